//! Length-prefixed prost frames: a 4-byte big-endian length, then the
//! message. Used on `<state>/<id>/shim.sock`, where gRPC would be too heavy
//! for a process that lives as long as its container.
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Frames larger than this are refused: no shim message comes near it.
pub const MAX_FRAME: usize = 1 << 20;

/// Writes one message as a frame.
pub async fn write_frame<W, M>(w: &mut W, msg: &M) -> std::io::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin,
    M: Message,
{
    let body = msg.encode_to_vec();
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf).await?;
    w.flush().await
}

/// Reads one frame; `Ok(None)` on a clean end of stream before any byte.
pub async fn read_frame<R, M>(r: &mut R) -> std::io::Result<Option<M>>
where
    R: tokio::io::AsyncRead + Unpin,
    M: Message + Default,
{
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over the limit"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    M::decode(body.as_slice()).map(Some).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
