//! The accessors of a response, shared by the async and the blocking shell: they only look at
//! the head and trailers kept in the buffer. Each shell's `Response` provides `buf()`, `core()`
//! and `parsed()` and expands this macro.

macro_rules! response_accessors {
    () => {
        /// The status code as the server sent it: three digits, `000` to `999`. See
        /// [`status_class`](Self::status_class) for codes outside 100–599.
        pub fn status(&self) -> u16 {
            self.parsed().status()
        }

        /// The class of the status code; a code outside 100–599 is a server error (RFC 9110
        /// §15).
        pub fn status_class(&self) -> $crate::StatusClass {
            self.parsed().status_class()
        }

        /// Whether the status is `2xx`.
        pub fn is_success(&self) -> bool {
            self.status_class() == $crate::StatusClass::Success
        }

        /// The reason phrase (empty when it is missing or not valid UTF-8).
        pub fn reason(&self) -> &str {
            let (a, b) = self.parsed().reason;
            self.buf()
                .get(usize::from(a)..usize::from(b))
                .and_then(|r| core::str::from_utf8(r).ok())
                .unwrap_or("")
        }

        /// The minor HTTP version: 0 for HTTP/1.0, 1 for HTTP/1.1 (and any higher `HTTP/1.x`,
        /// read as HTTP/1.1).
        pub fn minor_version(&self) -> u8 {
            self.parsed().minor_version()
        }

        /// How the body is delimited.
        pub fn framing(&self) -> $crate::Framing {
            self.parsed().framing()
        }

        /// The body's length when the server declared it (`Content-Length`), `Some(0)` when
        /// there is no body.
        pub fn content_length(&self) -> Option<u64> {
            match self.parsed().framing() {
                $crate::Framing::Empty => Some(0),
                $crate::Framing::Length(n) => Some(n),
                _ => None,
            }
        }

        /// Whether the connection can carry another request once this body has been read:
        /// HTTP/1.1, no `Connection: close`, and a body not delimited by the server closing
        /// the connection.
        pub fn keeps_connection(&self) -> bool {
            self.parsed().keeps_connection()
        }

        /// Whether the body has been read to its end.
        pub fn is_complete(&self) -> bool {
            self.core().body_done()
        }

        /// The header fields in wire order: `(name, value)`, values trimmed.
        pub fn headers(&self) -> $crate::Fields<'_> {
            let start = usize::from(self.parsed().fields_start);
            let end = usize::from(self.parsed().len);
            $crate::proto::response::fields(self.buf().get(start..end).unwrap_or(&[]))
        }

        /// The first header field with this name (case-insensitive), as text; `None` when
        /// absent or not UTF-8.
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers()
                .find(|h| h.is(name))
                .and_then(|h| h.value_str())
        }

        /// The trailer fields of a chunked body, once the body has been read to its end (empty
        /// otherwise).
        pub fn trailers(&self) -> $crate::Fields<'_> {
            $crate::proto::response::fields(self.buf().get(self.core().trailers()).unwrap_or(&[]))
        }
    };
}
pub(crate) use response_accessors;
