//! Just enough of the QEMU Machine Protocol to take a screenshot of a guest that did not
//! report (greeting, `qmp_capabilities`, `screendump` as PNG) and to read the VGA text
//! screen for `--expect-screen` (the monitor's `xp`).

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

/// A QMP connection past its greeting and capability negotiation.
pub struct Monitor {
    w: UnixStream,
    r: BufReader<UnixStream>,
}

impl Monitor {
    /// Connects to QEMU's QMP socket.
    pub fn connect(socket: &Path) -> Result<Monitor, QmpError> {
        let s = UnixStream::connect(socket)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let w = s.try_clone()?;
        let mut r = BufReader::new(s);
        let mut greeting = String::new();
        r.read_line(&mut greeting)?;
        if !greeting.contains("\"QMP\"") {
            return Err(QmpError::NotQmp(greeting.trim().to_string()));
        }
        let mut m = Monitor { w, r };
        m.send(json!({"execute": "qmp_capabilities"}))?;
        Ok(m)
    }

    fn send(&mut self, v: Value) -> Result<Value, QmpError> {
        writeln!(self.w, "{v}")?;
        reply(&mut self.r)
    }

    /// The 2000 cells (character and attribute) of the VGA text buffer at 0xB8000, read with
    /// the monitor's `xp`.
    pub fn text_cells(&mut self) -> Result<Vec<u16>, QmpError> {
        let v = self.send(json!({"execute": "human-monitor-command",
            "arguments": {"command-line": "xp /2000hx 0xb8000"}}))?;
        let text = v["return"].as_str().unwrap_or_default();
        Ok(parse_xp(text))
    }
}

/// The halfwords of `xp /Nhx` output (`00000000000b8000: 0x0753 0x0745 ...` per line).
fn parse_xp(text: &str) -> Vec<u16> {
    text.lines()
        .filter_map(|l| l.split_once(": ").map(|(_, words)| words))
        .flat_map(str::split_whitespace)
        .filter_map(|w| u16::from_str_radix(w.trim_start_matches("0x"), 16).ok())
        .collect()
}

/// Saves the guest's screen as a PNG through the QMP socket.
pub fn screendump(socket: &Path, png: &Path) -> Result<(), QmpError> {
    let mut m = Monitor::connect(socket)?;
    m.send(json!({"execute": "screendump",
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
    fn xp_output_is_read_as_halfwords() {
        let out = "00000000000b8000: 0x0753 0x0745 0x0741\r\n00000000000b8006: 0x0742\r\n";
        assert_eq!(parse_xp(out), [0x0753, 0x0745, 0x0741, 0x0742]);
    }

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
