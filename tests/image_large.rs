//! ISO level 3: a file of 4 GiB and more (made sparse at test time) is written as several
//! extents, and xorriso and bsdtar see one file of the full size with the right bytes.

mod support;

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::Command;

use support::*;

#[test]
fn files_over_4_gib_become_multi_extent() {
    need("xorriso");
    need("bsdtar");
    let t = tempfile::tempdir().unwrap();
    let src = sub(t.path(), "src");
    let size: u64 = (4 << 30) + 4097;
    let mut f = File::create(src.join("huge.img")).unwrap();
    f.write_all(b"START").unwrap();
    f.seek(SeekFrom::Start(0xFFFF_F800)).unwrap();
    f.write_all(b"SECOND-EXTENT").unwrap();
    f.set_len(size).unwrap();
    f.seek(SeekFrom::Start(size - 3)).unwrap();
    f.write_all(b"END").unwrap();
    drop(f);
    let iso = t.path().join("big.iso");
    mkiso(&src, &iso, &[]);

    let r = inspect_json(&iso);
    let huge = find(&r["files"], "path", "/huge.img");
    assert_eq!(huge["size"].as_u64().unwrap(), size);
    let extents = huge["extents"].as_array().unwrap();
    assert_eq!(extents.len(), 2);
    assert_eq!(extents[0][1].as_u64().unwrap(), 0xFFFF_F800);
    let first = extents[0][0].as_u64().unwrap();
    assert_eq!(extents[1][0].as_u64().unwrap(), first + 0xFFFF_F800 / 2048);

    let mut img = File::open(&iso).unwrap();
    let mut at = |off: u64, n: usize| {
        let mut b = vec![0; n];
        img.seek(SeekFrom::Start(first * 2048 + off)).unwrap();
        img.read_exact(&mut b).unwrap();
        b
    };
    assert_eq!(at(0, 5), b"START");
    assert_eq!(at(0xFFFF_F800, 13), b"SECOND-EXTENT");
    assert_eq!(at(size - 3, 3), b"END");

    let listing = run(Command::new("xorriso")
        .arg("-indev")
        .arg(&iso)
        .args(["-lsl", "/huge.img"]));
    assert!(listing.contains(&size.to_string()), "{listing}");
    let tar = run(Command::new("bsdtar").arg("-tvf").arg(&iso));
    assert!(
        tar.lines()
            .any(|l| l.contains(&size.to_string()) && l.ends_with("huge.img")),
        "{tar}"
    );
    fs::remove_file(&iso).unwrap();
}
