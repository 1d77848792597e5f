//! Just enough of the QEMU Machine Protocol to take a screenshot of a guest that did not
//! report: greeting, `qmp_capabilities`, `screendump` as PNG.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

/// Reads lines until a reply (`return` or `error`); events in between are skipped.
fn reply(r: &mut impl BufRead) -> Result<Value, String> {
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("QMP closed the connection".into());
        }
        let v: Value = serde_json::from_str(&line).map_err(|e| format!("QMP: {e}"))?;
        if let Some(e) = v.get("error") {
            return Err(format!("QMP error: {e}"));
        }
        if v.get("return").is_some() {
            return Ok(v);
        }
    }
}

/// Saves the guest's screen as a PNG through the QMP socket.
pub fn screendump(socket: &Path, png: &Path) -> Result<(), String> {
    let s = UnixStream::connect(socket).map_err(|e| format!("QMP socket: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s);
    let mut greeting = String::new();
    r.read_line(&mut greeting).map_err(|e| e.to_string())?;
    if !greeting.contains("\"QMP\"") {
        return Err(format!("not a QMP greeting: {}", greeting.trim()));
    }
    let mut send = |v: Value| -> Result<Value, String> {
        writeln!(w, "{v}").map_err(|e| e.to_string())?;
        reply(&mut r)
    };
    send(json!({"execute": "qmp_capabilities"}))?;
    send(json!({"execute": "screendump",
                "arguments": {"filename": png.to_string_lossy(), "format": "png"}}))?;
    if png.exists() {
        Ok(())
    } else {
        Err("QEMU did not write the screenshot".into())
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
            .contains("GenericError"));
        assert!(reply(&mut "".as_bytes()).is_err());
    }
}
