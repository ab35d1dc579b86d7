//! The one JSON result line, written in pieces through semihosting (no large buffer).

use core::fmt::{self, Display, Write};

use crate::board::Host;

/// Formats a value as the inside of a JSON string (quotes, backslashes and control characters
/// escaped).
pub struct Escaped<T>(pub T);

impl<T: Display> Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Escaper<'a, 'b>(&'a mut fmt::Formatter<'b>);
        impl Write for Escaper<'_, '_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                for c in s.chars() {
                    match c {
                        '"' => self.0.write_str("\\\"")?,
                        '\\' => self.0.write_str("\\\\")?,
                        c if (c as u32) < 0x20 => write!(self.0, "\\u{:04x}", c as u32)?,
                        c => self.0.write_char(c)?,
                    }
                }
                Ok(())
            }
        }
        write!(Escaper(f), "{}", self.0)
    }
}

/// A JSON writer to the host: members and elements get their commas by themselves.
pub struct Json {
    host: Host,
    first: bool,
}

impl Json {
    pub fn new() -> Self {
        Json {
            host: Host::new(),
            first: true,
        }
    }

    fn sep(&mut self) {
        if !self.first {
            let _ = self.host.write_str(",");
        }
        self.first = false;
    }

    /// Opens an object or array (`bracket` is `{` or `[`), as member `name` or as an element.
    pub fn open(&mut self, name: Option<&str>, bracket: &str) -> &mut Self {
        self.sep();
        if let Some(name) = name {
            let _ = write!(self.host, "\"{name}\":");
        }
        let _ = self.host.write_str(bracket);
        self.first = true;
        self
    }

    /// Closes what [`Json::open`] opened.
    pub fn close(&mut self, bracket: &str) -> &mut Self {
        let _ = self.host.write_str(bracket);
        self.first = false;
        self
    }

    /// `"name":value` with a number or `true`/`false`.
    pub fn num(&mut self, name: &str, value: impl Display) -> &mut Self {
        self.sep();
        let _ = write!(self.host, "\"{name}\":{value}");
        self
    }

    /// `"name":"value"`, escaped.
    pub fn str(&mut self, name: &str, value: impl Display) -> &mut Self {
        self.sep();
        let _ = write!(self.host, "\"{name}\":\"{}\"", Escaped(value));
        self
    }

    /// A number as an array element.
    pub fn item(&mut self, value: impl Display) -> &mut Self {
        self.sep();
        let _ = write!(self.host, "{value}");
        self
    }

    /// Ends the line and sends what is left.
    pub fn end(&mut self) {
        let _ = self.host.write_str("\n");
        self.host.flush();
    }
}
