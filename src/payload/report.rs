//! The report line a payload prints on COM1 (`ISOPROOF-BOOT mode=… via=… volume=…
//! hostname=… config=… [esp-crc32=…] params=…`), as payloads print it and as the boot stage
//! reads it back from a serial log.

use super::{Via, REPORT_TAG};

/// What a payload reports: values of the resolved config, embedded when the image is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The ISO volume ID.
    pub volume_id: String,
    /// `networking.hostName`.
    pub hostname: String,
    /// `boot.kernelParams`, joined by spaces.
    pub kernel_params: String,
    /// The sha256 (hex) of `/isoproof/config.json`.
    pub config_sha256: String,
}

/// Control characters and spaces would split the line or its fields.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() || c == ' ' { '?' } else { c })
        .collect()
}

impl Report {
    /// The line up to the volume ID: `ISOPROOF-BOOT mode=… via=… volume=`. The BIOS
    /// program prints it, then the volume ID it reads from the image's primary volume
    /// descriptor.
    pub fn prefix(&self, via: Via) -> String {
        format!(
            "{REPORT_TAG} mode={} via={} volume=",
            via.mode(),
            via.name()
        )
    }

    /// The fields after the volume ID: ` hostname=… config=… embedded=…`. `embedded` names
    /// the fields the payload carries from build time instead of reading them from the
    /// image (the UEFI program reads only the ESP file it reports the CRC-32 of).
    pub fn after_volume(&self, via: Via) -> String {
        let embedded = match via {
            Via::ElTorito | Via::Mbr => "hostname,config,params",
            Via::Esp => "volume,hostname,config,params",
        };
        format!(
            " hostname={} config={} embedded={embedded}",
            clean(&self.hostname),
            self.config_sha256,
        )
    }

    /// The fields before the ESP digest: `ISOPROOF-BOOT mode=… via=… volume=… hostname=…
    /// config=… embedded=…`.
    pub fn head(&self, via: Via) -> String {
        format!(
            "{}{}{}",
            self.prefix(via),
            clean(&self.volume_id),
            self.after_volume(via)
        )
    }

    /// The last field, `params=…` (it may hold spaces), and the line end.
    pub fn tail(&self) -> String {
        let params: String = self
            .kernel_params
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        format!(" params={params}\r\n")
    }

    /// The whole line a payload entered through `via` prints; `esp_crc32` is what a UEFI
    /// payload read from the ESP.
    pub fn line(&self, via: Via, esp_crc32: Option<u32>) -> String {
        let digest = esp_crc32.map_or(String::new(), |c| format!(" esp-crc32={c:08x}"));
        format!("{}{digest}{}", self.head(via), self.tail())
    }
}

/// The first report line in a serial log, from its tag to the line end.
pub fn report_line(log: &str) -> Option<&str> {
    let at = log.find(REPORT_TAG)?;
    log[at..].split(['\r', '\n']).next()
}

/// A report line read back from a serial log, as `key=value` fields in line order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reported {
    /// The fields; `params` is last and holds the rest of the line.
    pub fields: Vec<(String, String)>,
}

impl Reported {
    /// Finds the first report line in a serial log (firmware output around it is ignored).
    pub fn find(log: &str) -> Option<Reported> {
        let line = &report_line(log)?[REPORT_TAG.len()..];
        let mut fields = Vec::new();
        let mut rest = line.trim_start();
        while !rest.is_empty() {
            if let Some(p) = rest.strip_prefix("params=") {
                fields.push(("params".to_string(), p.to_string()));
                break;
            }
            let (word, after) = rest.split_once(' ').unwrap_or((rest, ""));
            let (k, v) = word.split_once('=').unwrap_or((word, ""));
            fields.push((k.to_string(), v.to_string()));
            rest = after.trim_start();
        }
        Some(Reported { fields })
    }

    /// The value of a field.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::testing::report;

    #[test]
    fn report_lines_are_one_line_and_read_back() {
        let mut r = report();
        r.hostname = "evil\nhost name".into();
        let l = r.line(Via::Mbr, None);
        assert_eq!(l.matches('\n').count(), 1);
        assert!(l.contains("hostname=evil?host?name"));
        let log = format!(
            "firmware noise\r\n{}",
            report().line(Via::Esp, Some(0xdead_beef))
        );
        let got = Reported::find(&log).unwrap();
        assert_eq!(got.get("mode"), Some("uefi"));
        assert_eq!(got.get("via"), Some("esp"));
        assert_eq!(got.get("esp-crc32"), Some("deadbeef"));
        assert_eq!(got.get("params"), Some("console=ttyS0,115200 quiet"));
        assert_eq!(Reported::find("no line here"), None);
    }
}
