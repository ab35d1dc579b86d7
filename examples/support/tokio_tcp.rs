//! A tokio TCP stream as an `embedded_io_async` stream that can tell, without waiting, whether
//! bytes or its end are ready (`ReadReady`), which rawpost's `Client` asks before it writes into
//! a kept connection. Shared by the examples and the tests (`#[path]`).

use std::task::{Context, Waker};

use embedded_io_adapters::tokio_1::FromTokio;
use embedded_io_async::{ErrorType, Read, ReadReady, Write};
use tokio::io::ReadBuf;
use tokio::net::TcpStream;

/// A connected tokio TCP stream (with `TCP_NODELAY`, as a device's stack sends small segments at
/// once).
pub struct TokioTcp {
    inner: FromTokio<TcpStream>,
}

impl TokioTcp {
    /// Connects to `addr`.
    pub async fn connect(addr: impl tokio::net::ToSocketAddrs) -> std::io::Result<Self> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        Ok(Self::new(tcp))
    }

    /// Wraps a connected stream.
    pub fn new(tcp: TcpStream) -> Self {
        Self {
            inner: FromTokio::new(tcp),
        }
    }

    /// The tokio stream.
    #[allow(dead_code)]
    pub fn tcp(&self) -> &TcpStream {
        self.inner.inner()
    }
}

impl ErrorType for TokioTcp {
    type Error = std::io::Error;
}

impl Read for TokioTcp {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, std::io::Error> {
        self.inner.read(buf).await
    }
}

impl Write for TokioTcp {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, std::io::Error> {
        self.inner.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), std::io::Error> {
        self.inner.flush().await
    }
}

/// Ready when a peek returns at once: bytes, the end of the stream (a FIN), or an error.
impl ReadReady for TokioTcp {
    fn read_ready(&mut self) -> Result<bool, std::io::Error> {
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        let mut cx = Context::from_waker(Waker::noop());
        Ok(self.inner.inner().poll_peek(&mut cx, &mut buf).is_ready())
    }
}
