//! The gRPC channel to berthd over its unix socket.
use std::path::PathBuf;

use anyhow::Result;
use berth_proto::v1 as pb;
use berth_proto::v1::{containers_client::ContainersClient, images_client::ImagesClient, system_client::SystemClient};
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::Code;

/// Clients of berthd's three services, on one connection.
#[derive(Clone)]
pub struct Client {
    pub system: SystemClient<Channel>,
    pub images: ImagesClient<Channel>,
    pub containers: ContainersClient<Channel>,
}

/// berthd could not be reached; the exit code of any agent error (1, or 125
/// for `run` and `create`).
#[derive(Debug, thiserror::Error)]
#[error("Cannot connect to berthd at unix://{socket}. Is berthd running? ({cause})")]
pub struct ConnectError {
    socket: String,
    cause: String,
}

impl Client {
    pub async fn connect(socket: PathBuf) -> Result<Self> {
        let path = socket.clone();
        // The URI is required by the API and ignored by the connector.
        let channel = Endpoint::try_from("http://berthd.sock")?
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?)) }
            }))
            .await
            .map_err(|e| ConnectError {
                socket: socket.display().to_string(),
                cause: std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_else(|| e.to_string()),
            })?;
        Ok(Self {
            system: SystemClient::new(channel.clone()),
            images: ImagesClient::new(channel.clone()).max_decoding_message_size(64 << 20),
            containers: ContainersClient::new(channel).max_decoding_message_size(64 << 20),
        })
    }
}

impl Client {
    /// Containers as `ListStream` sends them, one message each, so no
    /// number of them makes a message too large to read; from a berthd
    /// older than the stream, `List`.
    pub async fn list_containers(&mut self, req: pb::ListContainersRequest) -> Result<Vec<pb::Container>> {
        match self.containers.list_stream(req.clone()).await {
            Ok(r) => collect(r.into_inner()).await,
            Err(s) if s.code() == Code::Unimplemented => Ok(self.containers.list(req).await?.into_inner().containers),
            Err(s) => Err(s.into()),
        }
    }

    /// Images as `ListStream` sends them; from an older berthd, `List`.
    pub async fn list_images(&mut self, req: pb::ListImagesRequest) -> Result<Vec<pb::Image>> {
        match self.images.list_stream(req.clone()).await {
            Ok(r) => collect(r.into_inner()).await,
            Err(s) if s.code() == Code::Unimplemented => Ok(self.images.list(req).await?.into_inner().images),
            Err(s) => Err(s.into()),
        }
    }
}

async fn collect<T>(mut stream: tonic::Streaming<T>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    while let Some(item) = stream.message().await? {
        out.push(item);
    }
    Ok(out)
}
