//! `berth.v1.Images`.
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use berth_proto::v1 as pb;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{blocking, chunk_writer, convert, CHUNK_QUEUE};
use crate::agent::Agent;
use crate::error::AgentError;
use crate::images::filter::ImageFilters;
use crate::registry::RegistryError;
use crate::store_layout::StoreLayout;

pub struct ImagesApi {
    pub agent: Arc<Agent>,
}

/// A client upload spooled to a file under `content/ingest`, removed when
/// dropped.
struct Upload(PathBuf);

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl ImagesApi {
    /// The images `List` and `ListStream` answer with.
    async fn filtered(&self, filters: Vec<String>) -> Result<Vec<crate::images::ImageRecord>, Status> {
        let images = self.agent.images.clone();
        blocking(move || {
            let filters = ImageFilters::parse(&filters)?;
            Ok(images.list_filtered(&filters)?)
        })
        .await
    }

    async fn spool<T>(
        &self,
        mut stream: Streaming<T>,
        mut data: impl FnMut(T) -> Vec<u8>,
        mut first: impl FnMut(&T),
    ) -> Result<Upload, Status>
    where
        T: Send + 'static,
    {
        let dir = self.agent.layout.ingest_dir();
        let upload = Upload(dir.join(format!("upload-{:016x}", rand::random::<u64>())));
        // The file is written on the blocking pool, fed through a short
        // queue: a slow disk slows this upload, not berthd's other calls.
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(CHUNK_QUEUE);
        let path = upload.0.clone();
        let writer = crate::blocking::run(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let mut file = std::fs::File::create(&path)?;
            while let Some(bytes) = rx.blocking_recv() {
                file.write_all(&bytes)?;
            }
            Ok(())
        });
        let received = async {
            let mut seen_first = false;
            while let Some(msg) = stream.next().await {
                let msg = msg?;
                if !seen_first {
                    first(&msg);
                    seen_first = true;
                }
                if tx.send(data(msg)).await.is_err() {
                    // The writer failed: its error is the answer.
                    break;
                }
            }
            Ok::<_, Status>(())
        }
        .await;
        drop(tx);
        // Waited for either way, so the file is gone with `upload` on an
        // error.
        let written = writer.await;
        received?;
        written.map_err(|e| Status::internal(format!("spool upload: {e}")))?;
        Ok(upload)
    }
}

#[tonic::async_trait]
impl pb::images_server::Images for ImagesApi {
    async fn load(&self, req: Request<Streaming<pb::DataChunk>>) -> Result<Response<pb::LoadResponse>, Status> {
        let upload = self.spool(req.into_inner(), |c| c.data, |_| {}).await?;
        let images = self.agent.images.clone();
        let loaded = blocking(move || {
            let r = images.load(&upload.0).map_err(AgentError::from);
            drop(upload);
            r
        })
        .await?;
        Ok(Response::new(pb::LoadResponse {
            images: loaded.into_iter().map(|l| pb::LoadedImage { id: l.id, names: l.names }).collect(),
        }))
    }

    async fn import(&self, req: Request<Streaming<pb::ImportChunk>>) -> Result<Response<pb::ImageResponse>, Status> {
        let mut reference = String::new();
        let mut message = String::new();
        let upload = self
            .spool(
                req.into_inner(),
                |c| c.data,
                |c| {
                    reference = c.reference.clone();
                    message = c.message.clone();
                },
            )
            .await?;
        let images = self.agent.images.clone();
        let rec = blocking(move || {
            let r = images
                .import(&upload.0, (!reference.is_empty()).then_some(reference.as_str()), &message)
                .map_err(AgentError::from);
            drop(upload);
            r
        })
        .await?;
        Ok(Response::new(pb::ImageResponse { image: Some(convert::image(&rec)) }))
    }

    async fn list(&self, req: Request<pb::ListImagesRequest>) -> Result<Response<pb::ListImagesResponse>, Status> {
        let list = self.filtered(req.into_inner().filters).await?;
        let images = super::bounded_list(&list, convert::image, "images")?;
        Ok(Response::new(pb::ListImagesResponse { images }))
    }

    type ListStreamStream = Pin<Box<dyn futures::Stream<Item = Result<pb::Image, Status>> + Send>>;

    async fn list_stream(
        &self,
        req: Request<pb::ListImagesRequest>,
    ) -> Result<Response<Self::ListStreamStream>, Status> {
        let list = self.filtered(req.into_inner().filters).await?;
        let stream = futures::stream::iter(list).map(|rec| Ok(convert::image(&rec)));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn tag(&self, req: Request<pb::TagRequest>) -> Result<Response<pb::ImageResponse>, Status> {
        let r = req.into_inner();
        let images = self.agent.images.clone();
        let rec = blocking(move || Ok(images.tag(&r.source, &r.target)?)).await?;
        Ok(Response::new(pb::ImageResponse { image: Some(convert::image(&rec)) }))
    }

    async fn remove(&self, req: Request<pb::RemoveImageRequest>) -> Result<Response<pb::RemoveImageResponse>, Status> {
        let r = req.into_inner();
        let agent = self.agent.clone();
        let report = blocking(move || agent.remove_image(&r.reference, r.force)).await?;
        Ok(Response::new(pb::RemoveImageResponse { untagged: report.untagged, deleted: report.deleted }))
    }

    async fn inspect(
        &self,
        req: Request<pb::InspectImageRequest>,
    ) -> Result<Response<pb::InspectImageResponse>, Status> {
        let r = req.into_inner();
        let images = self.agent.images.clone();
        let details = blocking(move || Ok(images.inspect(&r.reference)?)).await?;
        let inspect = convert::image_inspect(details);
        let json = serde_json::to_string_pretty(&berth_contract::inspect::image_document(&inspect))
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(pb::InspectImageResponse { json, inspect: Some(inspect) }))
    }

    async fn history(&self, req: Request<pb::InspectImageRequest>) -> Result<Response<pb::HistoryResponse>, Status> {
        let r = req.into_inner();
        let images = self.agent.images.clone();
        let entries = blocking(move || Ok(images.history(&r.reference)?)).await?;
        Ok(Response::new(pb::HistoryResponse { entries: entries.into_iter().map(convert::history_entry).collect() }))
    }

    type SaveStream = ReceiverStream<Result<pb::DataChunk, Status>>;

    async fn save(&self, req: Request<pb::SaveRequest>) -> Result<Response<Self::SaveStream>, Status> {
        let r = req.into_inner();
        let images = self.agent.images.clone();
        // Resolve and open everything first: an unknown name is an error
        // status, not a truncated stream.
        let plan = blocking(move || Ok(images.save_plan(&r.references)?)).await?;
        let (tx, rx) = mpsc::channel(CHUNK_QUEUE);
        crate::blocking::spawn(move || {
            let mut w = chunk_writer(tx.clone());
            if let Err(e) = plan.write(&mut w) {
                tracing::warn!(error = %e, "save stopped");
                let _ = tx.blocking_send(Err(Status::from(AgentError::from(e))));
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn prune(&self, req: Request<pb::PruneImagesRequest>) -> Result<Response<pb::PruneResponse>, Status> {
        let all = req.into_inner().all;
        let agent = self.agent.clone();
        let report = blocking(move || agent.prune_images(all)).await?;
        Ok(Response::new(pb::PruneResponse { deleted: report.lines, reclaimed: report.reclaimed }))
    }

    type PullStream = ReceiverStream<Result<pb::PullProgress, Status>>;

    async fn pull(&self, req: Request<pb::PullRequest>) -> Result<Response<Self::PullStream>, Status> {
        let opts = convert::pull_options(req.into_inner());
        let puller = self.agent.registry.clone();
        let (out, rx) = mpsc::channel(PULL_QUEUE);
        tokio::spawn(async move {
            let (events, mut ev_rx) = mpsc::channel(PULL_QUEUE);
            let reference = opts.reference.clone();
            let pull = puller.pull(opts, events);
            let forward = async {
                while let Some(ev) = ev_rx.recv().await {
                    if out.send(Ok(convert::pull_progress(ev))).await.is_err() {
                        // The client went away: dropping the receiver
                        // cancels the pull.
                        return;
                    }
                }
            };
            // Progress is buffered, so a send may not fail for a long time
            // after the client has gone: watch for it too, and drop the
            // pull (its downloads keep what arrived) when it does.
            let result = tokio::select! {
                (result, ()) = async { tokio::join!(pull, forward) } => result,
                () = out.closed() => Err(RegistryError::Cancelled),
            };
            if let Err(e) = result {
                tracing::warn!(reference, error = %e, "pull failed");
                let _ = out.send(Err(Status::from(AgentError::from(e)))).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type PushStream = ReceiverStream<Result<pb::PushProgress, Status>>;

    async fn push(&self, req: Request<pb::PushRequest>) -> Result<Response<Self::PushStream>, Status> {
        let opts = convert::push_options(req.into_inner());
        let puller = self.agent.registry.clone();
        let (out, rx) = mpsc::channel(PULL_QUEUE);
        tokio::spawn(async move {
            let (events, mut ev_rx) = mpsc::channel(PULL_QUEUE);
            let reference = opts.reference.clone();
            let push = puller.push(opts, events);
            let forward = async {
                while let Some(ev) = ev_rx.recv().await {
                    if out.send(Ok(convert::push_progress(ev))).await.is_err() {
                        return;
                    }
                }
            };
            let result = tokio::select! {
                (result, ()) = async { tokio::join!(push, forward) } => result,
                () = out.closed() => Err(RegistryError::Cancelled),
            };
            if let Err(e) = result {
                tracing::warn!(reference, error = %e, "push failed");
                let _ = out.send(Err(Status::from(AgentError::from(e)))).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn login(&self, req: Request<pb::LoginRequest>) -> Result<Response<pb::LoginResponse>, Status> {
        let (registry, creds) = convert::login_request(req.into_inner());
        self.agent.registry.login(&registry, creds).await.map_err(AgentError::from)?;
        Ok(Response::new(pb::LoginResponse { status: "Login Succeeded".into() }))
    }
}

/// Progress events in flight to a pulling or pushing client.
const PULL_QUEUE: usize = 64;
