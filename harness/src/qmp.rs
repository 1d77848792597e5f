//! Just enough of the QEMU Machine Protocol to take a screenshot of a guest that did not
//! report: greeting, `qmp_capabilities`, `screendump` as PNG.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

/// Why a screenshot could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// The socket could not be used.
    #[error("QMP socket: {0}")]
    Io(#[from] std::io::Error),
    /// QEMU closed the connection before replying.
    #[error("QMP closed the connection")]
    Closed,
    /// A line that is not JSON.
    #[error("QMP: {0}")]
    Json(#[from] serde_json::Error),
    /// QEMU answered with an error.
    #[error("QMP error: {0}")]
    Refused(Value),
    /// The first line was not QMP's greeting.
    #[error("not a QMP greeting: {0}")]
    NotQmp(String),
    /// The command succeeded but no file appeared.
    #[error("QEMU did not write the screenshot")]
    NoFile,
}

/// Reads lines until a reply (`return` or `error`); events in between are skipped.
fn reply(r: &mut impl BufRead) -> Result<Value, QmpError> {
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(QmpError::Closed);
        }
        let v: Value = serde_json::from_str(&line)?;
        if let Some(e) = v.get("error") {
            return Err(QmpError::Refused(e.clone()));
        }
        if v.get("return").is_some() {
            return Ok(v);
        }
    }
}

/// Saves the guest's screen as a PNG through the QMP socket.
pub fn screendump(socket: &Path, png: &Path) -> Result<(), QmpError> {
    let s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let mut greeting = String::new();
    r.read_line(&mut greeting)?;
    if !greeting.contains("\"QMP\"") {
        return Err(QmpError::NotQmp(greeting.trim().to_string()));
    }
    let mut send = |v: Value| -> Result<Value, QmpError> {
        writeln!(w, "{v}")?;
        reply(&mut r)
    };
    send(json!({"execute": "qmp_capabilities"}))?;
    send(json!({"execute": "screendump",
                "arguments": {"filename": png.to_string_lossy(), "format": "png"}}))?;
    if png.exists() {
        Ok(())
    } else {
        Err(QmpError::NoFile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_skip_events_and_surface_errors() {
        let log = "{\"event\": \"RESUME\"}\n{\"return\": {}}\n";
        assert_eq!(reply(&mut log.as_bytes()).unwrap(), json!({"return": {}}));
        let log = "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}}\n";
        assert!(reply(&mut log.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("GenericError"));
        assert!(reply(&mut "".as_bytes()).is_err());
    }
}
