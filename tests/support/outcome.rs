//! What a caller observes of a response, through either shell: one type that runs are compared
//! with, and the loops that read a body to its end.

use rawpost::Framing;

/// Header or trailer fields, owned, in wire order.
pub type Fields = Vec<(String, Vec<u8>)>;

/// The fields of a response, owned.
pub fn fields(it: rawpost::Fields<'_>) -> Fields {
    it.map(|h| (h.name.to_string(), h.value.to_vec())).collect()
}

/// Everything a caller can observe of one response: its head, its body as read, its trailers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: u16,
    pub reason: String,
    pub headers: Fields,
    pub body: Vec<u8>,
    pub trailers: Fields,
    pub keeps_connection: bool,
    pub framing: Framing,
}

/// A response of either shell. (Both have the same accessors, as inherent methods of two
/// types: this trait lets one function read either.)
pub trait Observe {
    /// What the caller observes of the response, given the body it read.
    fn outcome(&self, body: Vec<u8>) -> Outcome;
    /// Whether the body has been read to its end.
    fn complete(&self) -> bool;
}

macro_rules! observe {
    ($($response:ident)::+) => {
        impl<S, T> Observe for $($response)::+<'_, '_, S, T> {
            fn outcome(&self, body: Vec<u8>) -> Outcome {
                Outcome {
                    status: self.status(),
                    reason: self.reason().to_string(),
                    headers: fields(self.headers()),
                    body,
                    trailers: fields(self.trailers()),
                    keeps_connection: self.keeps_connection(),
                    framing: self.framing(),
                }
            }

            fn complete(&self) -> bool {
                self.is_complete()
            }
        }
    };
}

observe!(rawpost::Response);
observe!(rawpost::blocking::Response);

/// Reads `body` to its end (`Ok(0)`), `step` bytes per `read` call at most.
pub async fn read_body<R: embedded_io_async::Read>(
    body: &mut R,
    step: usize,
) -> Result<Vec<u8>, R::Error> {
    let mut all = Vec::new();
    let mut piece = vec![0u8; step];
    loop {
        match body.read(&mut piece).await? {
            0 => return Ok(all),
            n => {
                assert!(n <= step);
                all.extend_from_slice(&piece[..n]);
            }
        }
    }
}

/// [`read_body`] through the blocking shell.
pub fn read_body_blocking<R: embedded_io::Read>(
    body: &mut R,
    step: usize,
) -> Result<Vec<u8>, R::Error> {
    let mut all = Vec::new();
    let mut piece = vec![0u8; step];
    loop {
        match body.read(&mut piece)? {
            0 => return Ok(all),
            n => {
                assert!(n <= step);
                all.extend_from_slice(&piece[..n]);
            }
        }
    }
}

/// Reads `response`'s body to its end, `step` bytes per call, and returns what the caller
/// observed; the end of the body (`Ok(0)`) must be its real end.
pub async fn read_outcome<R>(mut response: R, step: usize) -> Result<Outcome, R::Error>
where
    R: embedded_io_async::Read + Observe,
{
    let body = read_body(&mut response, step).await?;
    assert!(response.complete(), "Ok(0) before the body's end");
    Ok(response.outcome(body))
}

/// [`read_outcome`] through the blocking shell.
pub fn read_outcome_blocking<R>(mut response: R, step: usize) -> Result<Outcome, R::Error>
where
    R: embedded_io::Read + Observe,
{
    let body = read_body_blocking(&mut response, step)?;
    assert!(response.complete(), "Ok(0) before the body's end");
    Ok(response.outcome(body))
}

/// Sends `req` and reads the whole response, `step` bytes per `read` call.
pub async fn send_and_read<S, T>(
    conn: &mut rawpost::Connection<'_, S, T>,
    req: &rawpost::Request<'_>,
    step: usize,
) -> Result<Outcome, rawpost::Error<S::Error>>
where
    S: embedded_io_async::Read + embedded_io_async::Write,
    T: rawpost::Timer,
{
    read_outcome(conn.send(req).await?, step).await
}
