//! The gRPC layer, thin by rule (STYLE.md): each handler converts the
//! request (`convert.rs`), calls the core, converts back. Status codes are
//! chosen once, here.
use tonic::{Code, Status};

use crate::error::AgentError;
use crate::images::ImageError;

mod containers;
mod convert;
mod images;
mod system;

pub use containers::ContainersApi;
pub use images::ImagesApi;
pub use system::SystemApi;

impl From<AgentError> for Status {
    fn from(e: AgentError) -> Self {
        let code = match &e {
            AgentError::NotFound(_) => Code::NotFound,
            AgentError::InvalidArgument(_) | AgentError::StartFailed { .. } => Code::InvalidArgument,
            AgentError::FailedPrecondition(_) => Code::FailedPrecondition,
            AgentError::AlreadyExists(_) => Code::AlreadyExists,
            AgentError::Image(ImageError::NotFound(_)) => Code::NotFound,
            AgentError::Image(ImageError::InvalidReference(_) | ImageError::Invalid(_)) => Code::InvalidArgument,
            AgentError::Image(ImageError::InUse(_)) => Code::FailedPrecondition,
            _ => Code::Internal,
        };
        // The whole cause chain, so nothing is lost on the way to a person.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let text = s.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = s.source();
        }
        Status::new(code, message)
    }
}

/// Runs blocking core work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AgentError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Status::internal(e.to_string()))?.map_err(Status::from)
}
