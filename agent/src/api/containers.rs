//! `berth.v1.Containers`.
use std::pin::Pin;
use std::sync::Arc;

use berth_proto::v1 as pb;
use futures::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::{chunk_writer, convert, io, ChunkReader, CHUNK_QUEUE};
use crate::containers::{Attached, Filters, LogOptions, Manager, StatsOptions};
use crate::error::AgentError;

pub struct ContainersApi {
    pub manager: Arc<Manager>,
}

fn reply(rec: crate::containers::ContainerRecord) -> Response<pb::ContainerResponse> {
    Response::new(pb::ContainerResponse { container: Some(convert::container(&rec)) })
}

type LogStream = Pin<Box<dyn Stream<Item = Result<pb::LogRecord, Status>> + Send>>;
type IoStream = Pin<Box<dyn Stream<Item = Result<pb::IoOut, Status>> + Send>>;
type CopyStream = Pin<Box<dyn Stream<Item = Result<pb::CopyFromChunk, Status>> + Send>>;
type RunStream = Pin<Box<dyn Stream<Item = Result<pb::RunEvent, Status>> + Send>>;
type StatsStream = Pin<Box<dyn Stream<Item = Result<pb::StatsBatch, Status>> + Send>>;

#[tonic::async_trait]
impl pb::containers_server::Containers for ContainersApi {
    async fn create(
        &self,
        req: Request<pb::CreateContainerRequest>,
    ) -> Result<Response<pb::ContainerResponse>, Status> {
        let opts = convert::create_options(req.into_inner())?;
        Ok(reply(self.manager.create(opts).await?))
    }

    type RunStream = RunStream;

    async fn run(&self, req: Request<pb::RunRequest>) -> Result<Response<Self::RunStream>, Status> {
        let r = req.into_inner();
        // A create that fails, or an unknown container, is this call's
        // status, before any message.
        let (rec, new) = match r.create {
            Some(create) => (self.manager.create(convert::create_options(create)?).await?, true),
            None if !r.id.is_empty() => (self.manager.refresh(&r.id).await?, false),
            None => {
                return Err(Status::invalid_argument("a run needs a container to create, or the ID of one to start"))
            }
        };
        let created = pb::RunEvent { kind: Some(pb::run_event::Kind::Created(convert::container(&rec))) };
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let (err_tx, err_rx) = tokio::sync::mpsc::channel::<Status>(1);
        let m = self.manager.clone();
        tokio::spawn(async move {
            if let Err(e) = m.run_created(rec, new, r.detach, tx).await {
                let _ = err_tx.send(e.into()).await;
            }
        });
        let events = ReceiverStream::new(rx).map(|e| Ok(convert::run_event(e)));
        let errors = ReceiverStream::new(err_rx).map(Err);
        Ok(Response::new(Box::pin(tokio_stream::once(Ok(created)).chain(events).chain(errors))))
    }

    async fn start(&self, req: Request<pb::ContainerRef>) -> Result<Response<pb::ContainerResponse>, Status> {
        Ok(reply(self.manager.start(&req.into_inner().id).await?))
    }

    async fn stop(&self, req: Request<pb::StopRequest>) -> Result<Response<pb::ContainerResponse>, Status> {
        let r = req.into_inner();
        Ok(reply(self.manager.stop(&r.id, convert::stop_timeout(&r)).await?))
    }

    async fn update(
        &self,
        req: Request<pb::UpdateContainerRequest>,
    ) -> Result<Response<pb::ContainerResponse>, Status> {
        let r = req.into_inner();
        let change = convert::resources(r.resources.unwrap_or_default());
        let restart = r.restart_policy.map(convert::restart_policy).transpose().map_err(AgentError::from)?;
        Ok(reply(self.manager.update(&r.id, &change, restart).await?))
    }

    async fn pause(&self, req: Request<pb::ContainerRef>) -> Result<Response<pb::ContainerResponse>, Status> {
        Ok(reply(self.manager.pause(&req.into_inner().id).await?))
    }

    async fn unpause(&self, req: Request<pb::ContainerRef>) -> Result<Response<pb::ContainerResponse>, Status> {
        Ok(reply(self.manager.unpause(&req.into_inner().id).await?))
    }

    async fn restart(&self, req: Request<pb::StopRequest>) -> Result<Response<pb::ContainerResponse>, Status> {
        let r = req.into_inner();
        Ok(reply(self.manager.restart(&r.id, convert::stop_timeout(&r)).await?))
    }

    async fn rename(
        &self,
        req: Request<pb::RenameContainerRequest>,
    ) -> Result<Response<pb::ContainerResponse>, Status> {
        let r = req.into_inner();
        Ok(reply(self.manager.rename(&r.id, &r.name).await?))
    }

    async fn kill(&self, req: Request<pb::KillRequest>) -> Result<Response<pb::ContainerResponse>, Status> {
        let r = req.into_inner();
        Ok(reply(self.manager.kill(&r.id, &convert::kill_signal(&r)).await?))
    }

    async fn remove(
        &self,
        req: Request<pb::RemoveContainerRequest>,
    ) -> Result<Response<pb::RemoveContainerResponse>, Status> {
        let r = req.into_inner();
        let id = self.manager.remove(&r.id, r.force).await?;
        Ok(Response::new(pb::RemoveContainerResponse { id }))
    }

    async fn list(
        &self,
        req: Request<pb::ListContainersRequest>,
    ) -> Result<Response<pb::ListContainersResponse>, Status> {
        let r = req.into_inner();
        let filters = Filters::parse(&r.filters)?;
        let list = self.manager.list(r.all, &filters).await?;
        let list: Vec<_> = list.into_iter().map(|rec| self.manager.with_live_health(rec)).collect();
        let containers = super::bounded_list(&list, convert::container, "containers")?;
        Ok(Response::new(pb::ListContainersResponse { containers }))
    }

    type ListStreamStream = Pin<Box<dyn Stream<Item = Result<pb::Container, Status>> + Send>>;

    async fn list_stream(
        &self,
        req: Request<pb::ListContainersRequest>,
    ) -> Result<Response<Self::ListStreamStream>, Status> {
        let r = req.into_inner();
        let filters = Filters::parse(&r.filters)?;
        let list = self.manager.list(r.all, &filters).await?;
        // Converted as the client reads: one container's message at a time.
        let m = self.manager.clone();
        let stream = tokio_stream::iter(list).map(move |rec| Ok(convert::container(&m.with_live_health(rec))));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn inspect(&self, req: Request<pb::ContainerRef>) -> Result<Response<pb::InspectContainerResponse>, Status> {
        let rec = self.manager.with_live_health(self.manager.refresh(&req.into_inner().id).await?);
        let inspect = convert::container_inspect(&rec);
        let json = serde_json::to_string_pretty(&berth_contract::inspect::container_document(&inspect))
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(pb::InspectContainerResponse { json, inspect: Some(inspect) }))
    }

    async fn wait(&self, req: Request<pb::ContainerRef>) -> Result<Response<pb::WaitResponse>, Status> {
        let ev = self.manager.wait(&req.into_inner().id).await?;
        Ok(Response::new(pb::WaitResponse { exit_code: ev.exit_code, error: ev.error }))
    }

    async fn commit(&self, req: Request<pb::CommitRequest>) -> Result<Response<pb::ImageResponse>, Status> {
        let opts = convert::commit_options(req.into_inner());
        let rec = self.manager.commit(opts).await?;
        Ok(Response::new(pb::ImageResponse { image: Some(convert::image(&rec)) }))
    }

    type ExportStream = ReceiverStream<Result<pb::DataChunk, Status>>;

    async fn export(&self, req: Request<pb::ContainerRef>) -> Result<Response<Self::ExportStream>, Status> {
        let (tx, rx) = tokio::sync::mpsc::channel(CHUNK_QUEUE);
        let on_error = tx.clone();
        let failed = move |e: crate::error::AgentError| {
            let _ = on_error.blocking_send(Err(Status::from(e)));
        };
        self.manager.export(&req.into_inner().id, chunk_writer(tx), failed).await?;
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn prune(&self, _: Request<pb::PruneContainersRequest>) -> Result<Response<pb::PruneResponse>, Status> {
        let (deleted, reclaimed) = self.manager.prune().await?;
        Ok(Response::new(pb::PruneResponse { deleted, reclaimed }))
    }

    type AttachStream = IoStream;

    async fn attach(&self, req: Request<tonic::Streaming<pb::IoIn>>) -> Result<Response<Self::AttachStream>, Status> {
        let since = berth_contract::now_nanos();
        let mut input = req.into_inner();
        let Some(pb::IoIn { kind: Some(pb::io_in::Kind::Attach(a)) }) = input.message().await? else {
            return Err(Status::invalid_argument("the first message of an attach must name the container"));
        };
        // Known, or an error status now; the rest (the wait for a created
        // container's start) happens behind the answer, so the client can
        // start the container after this call returns.
        self.manager.lookup(&a.id)?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let m = self.manager.clone();
        tokio::spawn(async move {
            let attached = tokio::select! {
                r = m.attach(&a.id, a.stdin, a.from_start) => r,
                // The client left before the container started.
                _ = tx.closed() => return,
            };
            match attached {
                Ok(Attached::Live(stream)) => {
                    m.relay_process(stream, io::input(input), io::output(tx), false, a.from_start.then_some(since))
                        .await
                }
                Ok(Attached::Exited { id, exit_code }) => m.replay_exited(id, exit_code, since, io::output(tx)).await,
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type ExecStream = IoStream;

    async fn exec(&self, req: Request<tonic::Streaming<pb::IoIn>>) -> Result<Response<Self::ExecStream>, Status> {
        let mut input = req.into_inner();
        let Some(pb::IoIn { kind: Some(pb::io_in::Kind::Exec(x)) }) = input.message().await? else {
            return Err(Status::invalid_argument("the first message of an exec must describe the process"));
        };
        let detach = x.detach;
        let stream = self.manager.exec(convert::exec_options(x)).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let m = self.manager.clone();
        tokio::spawn(async move { m.relay_process(stream, io::input(input), io::output(tx), detach, None).await });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn top(&self, req: Request<pb::TopRequest>) -> Result<Response<pb::TopResponse>, Status> {
        let r = req.into_inner();
        let top = self.manager.top(&r.id, &r.ps_args).await?;
        let processes = top.rows.into_iter().map(|cells| pb::TopRow { cells }).collect();
        Ok(Response::new(pb::TopResponse { titles: top.titles, processes }))
    }

    async fn diff(&self, req: Request<pb::ContainerRef>) -> Result<Response<pb::DiffResponse>, Status> {
        use crate::containers::diff::ChangeKind;
        let changes = self.manager.diff(&req.into_inner().id).await?;
        let changes = changes
            .into_iter()
            .map(|c| {
                let kind = match c.kind {
                    ChangeKind::Added => pb::ChangeKind::Added,
                    ChangeKind::Changed => pb::ChangeKind::Changed,
                    ChangeKind::Deleted => pb::ChangeKind::Deleted,
                };
                pb::FileChange { kind: kind as i32, path: c.path }
            })
            .collect();
        Ok(Response::new(pb::DiffResponse { changes }))
    }

    type StatsStream = StatsStream;

    async fn stats(&self, req: Request<pb::StatsRequest>) -> Result<Response<Self::StatsStream>, Status> {
        let r = req.into_inner();
        // An unknown container fails the call before the stream starts.
        let ids = self.manager.stats_ids(&r.ids)?;
        let interval = std::time::Duration::from_millis(if r.interval_ms == 0 { 1000 } else { r.interval_ms.into() });
        let opts = StatsOptions { ids, all: r.all, stream: r.stream, interval };
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let (err_tx, err_rx) = tokio::sync::mpsc::channel::<Status>(1);
        let m = self.manager.clone();
        tokio::spawn(async move {
            if let Err(e) = m.stats(opts, tx).await {
                let _ = err_tx.send(e.into()).await;
            }
        });
        let batches = ReceiverStream::new(rx).map(|b| Ok(convert::stats_batch(b)));
        let errors = ReceiverStream::new(err_rx).map(Err);
        Ok(Response::new(Box::pin(batches.chain(errors))))
    }

    type LogsStream = LogStream;

    async fn logs(&self, req: Request<pb::LogsRequest>) -> Result<Response<Self::LogsStream>, Status> {
        let r = req.into_inner();
        // Fail fast on an unknown container, before the stream starts.
        self.manager.lookup(&r.id)?;
        let opts = LogOptions { follow: r.follow, tail: (r.tail >= 0).then_some(r.tail as usize), since: r.since };
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let (err_tx, err_rx) = tokio::sync::mpsc::channel::<Status>(1);
        let m = self.manager.clone();
        tokio::spawn(async move {
            if let Err(e) = m.logs(&r.id, opts, tx).await {
                let _ = err_tx.send(e.into()).await;
            }
        });
        let records = ReceiverStream::new(rx).map(|r| Ok(convert::log_record(r)));
        let errors = ReceiverStream::new(err_rx).map(Err);
        Ok(Response::new(Box::pin(records.chain(errors))))
    }

    type CopyFromStream = CopyStream;

    async fn copy_from(&self, req: Request<pb::CopyFromRequest>) -> Result<Response<Self::CopyFromStream>, Status> {
        let r = req.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(CHUNK_QUEUE);
        let on_error = tx.clone();
        let failed = move |e: crate::error::AgentError| {
            let _ = on_error.blocking_send(Err(Status::from(e)));
        };
        let stat = self.manager.copy_from(&r.id, &r.path, r.follow_link, chunk_writer(tx), failed).await?;
        let head = tokio_stream::once(Ok(pb::CopyFromChunk { stat: Some(convert::path_stat(stat)), data: Vec::new() }));
        let body = ReceiverStream::new(rx).map(|c| c.map(|c| pb::CopyFromChunk { stat: None, data: c.data }));
        Ok(Response::new(Box::pin(head.chain(body))))
    }

    async fn copy_to(&self, req: Request<Streaming<pb::CopyToChunk>>) -> Result<Response<pb::CopyToResponse>, Status> {
        let mut stream = req.into_inner();
        let mut first = stream.message().await?.ok_or_else(|| Status::invalid_argument("empty copy stream"))?;
        let opts = convert::copy_to_options(&first);
        let (tx, rx) = tokio::sync::mpsc::channel(CHUNK_QUEUE);
        let data = std::mem::take(&mut first.data);
        tokio::spawn(async move {
            if !data.is_empty() && tx.send(Ok(data)).await.is_err() {
                return;
            }
            loop {
                let next = match stream.message().await {
                    Ok(Some(m)) => Ok(m.data),
                    Ok(None) => return,
                    Err(e) => Err(e),
                };
                let stop = next.is_err();
                if tx.send(next).await.is_err() || stop {
                    return;
                }
            }
        });
        self.manager.copy_to(&first.id, opts, ChunkReader::new(rx)).await?;
        Ok(Response::new(pb::CopyToResponse {}))
    }
}
