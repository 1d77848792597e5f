//! Encoding what the planner laid out: directory extents (records packed into sectors, `CL`
//! and `PL` pointing at their directories' sectors, `CE` at their continuation chunks), the
//! continuation areas themselves, and path tables.

use super::dirs::{rec_len, Dir, Node, Target, MAX_EXTENT};
use super::PlanError;
use crate::image::clock::Clock;
use crate::image::format::iso9660::{DirectoryRecord, PathTableOrder, PathTableRecord, SECTOR};
use crate::image::format::record::{BothEndian, Field};
use crate::image::format::rockridge as rr;
use crate::image::format::structure::{Structure, Tree};
use crate::image::format::susp;

/// Where every source node's data went: (first sector, size), for files.
pub(super) type DataMap = Vec<Option<(u64, u64)>>;

/// Gives every record's spilled entries their chunks in the continuation pool starting at
/// byte `start`; chunks never cross a sector boundary. Returns the pool's end.
pub(super) fn lay_out_continuations(dirs: &mut [Dir], start: u64) -> u64 {
    let mut pool = start;
    for d in dirs {
        for r in &mut d.recs {
            if r.spill.is_empty() {
                continue;
            }
            let groups = susp::chunks(&r.spill);
            let last = groups.len() - 1;
            for (gi, g) in groups.into_iter().enumerate() {
                let len = susp::chunk_len(&r.spill, &g, gi == last);
                if pool % SECTOR + len as u64 > SECTOR {
                    pool = pool.next_multiple_of(SECTOR);
                }
                r.chunks.push((pool, len, g));
                pool += len as u64;
            }
        }
    }
    pool
}

/// The bytes of the continuation pool laid out by [`lay_out_continuations`].
pub(super) fn continuations(dirs: &[Dir], start: u64, end: u64) -> Vec<u8> {
    let mut pool = vec![0u8; (end - start) as usize];
    for d in dirs {
        for r in &d.recs {
            for (gi, (off, _, g)) in r.chunks.iter().enumerate() {
                let mut b: Vec<u8> = r.spill[g.clone()].concat();
                if let Some(&(noff, nlen, _)) = r.chunks.get(gi + 1) {
                    b.extend_from_slice(&susp::ce(
                        (noff / SECTOR) as u32,
                        (noff % SECTOR) as u32,
                        nlen as u32,
                    ));
                }
                let at = (off - start) as usize;
                pool[at..at + b.len()].copy_from_slice(&b);
            }
        }
    }
    pool
}

/// A path table of one tree, in `order`.
pub(super) fn path_table(dirs: &[Dir], order: PathTableOrder) -> Vec<u8> {
    let mut out = Vec::new();
    for d in dirs {
        PathTableRecord {
            extent: d.sector as u32,
            parent: (d.parent + 1) as u16,
            identifier: d.name.clone(),
        }
        .encode(order, &mut out);
    }
    out
}

/// The length of a tree's path tables.
pub(super) fn path_table_len(dirs: &[Dir]) -> u64 {
    dirs.iter()
        .map(|d| PathTableRecord::len_for(d.name.len()) as u64)
        .sum()
}

/// Encodes a directory's records, sector-packed. `dir_of` maps a source node to its
/// directory in the primary tree (for `CL` and `PL`).
fn directory(
    d: &Dir,
    dirs: &[Dir],
    data: &DataMap,
    dir_of: &[Option<usize>],
    clock: Clock,
) -> Result<Vec<u8>, PlanError> {
    let mut out: Vec<u8> = Vec::with_capacity(d.size as usize);
    for r in &d.recs {
        let l = rec_len(r);
        if out.len() as u64 % SECTOR + l as u64 > SECTOR {
            out.resize((out.len() as u64).next_multiple_of(SECTOR) as usize, 0);
        }
        let (extent, size) = match r.target {
            Target::Dir(i) => (dirs[i].sector as u32, dirs[i].size as u32),
            Target::Data(n, k) => {
                let (sector, size) =
                    data[n].ok_or(PlanError::Internal("a file record without data"))?;
                let off = k as u64 * MAX_EXTENT;
                let len = size.saturating_sub(off).min(MAX_EXTENT);
                ((sector + off / SECTOR) as u32, len as u32)
            }
            Target::None => (0, 0),
        };
        let mut su = r.inline.clone();
        if let Some(n) = r.link {
            // The leading CL or PL entry gets the sector of the directory it points at.
            let j = dir_of[n].ok_or(PlanError::Internal("a relocation link to no directory"))?;
            BothEndian::new(dirs[j].sector as u32).write(&mut su[rr::LINK_BLOCK]);
        }
        if let Some(&(off, len, _)) = r.chunks.first() {
            su.extend_from_slice(&susp::ce(
                (off / SECTOR) as u32,
                (off % SECTOR) as u32,
                len as u32,
            ));
        }
        DirectoryRecord::new(
            extent,
            size,
            crate::image::format::iso9660::DirDateTime::at(clock.civil()),
            r.flags,
            r.name.clone(),
            su,
        )
        .map_err(PlanError::Record)?
        .encode(&mut out);
    }
    out.resize(d.size as usize, 0);
    Ok(out)
}

/// Every directory extent of a tree: sector, structure, bytes.
pub(super) fn tree(
    tree: Tree,
    dirs: &[Dir],
    data: &DataMap,
    clock: Clock,
) -> Result<Vec<(u64, Structure, Vec<u8>)>, PlanError> {
    let dir_of = dir_index(dirs, data.len());
    dirs.iter()
        .map(|d| {
            let bytes = directory(d, dirs, data, &dir_of, clock)?;
            Ok((d.sector, Structure::Directory(tree, d.path.clone()), bytes))
        })
        .collect()
}

/// The directory of each source node in a tree (the first, where a node has two).
fn dir_index(dirs: &[Dir], nodes: usize) -> Vec<Option<usize>> {
    let mut v = vec![None; nodes];
    for (i, d) in dirs.iter().enumerate() {
        if let Node::Source(n) = d.node {
            v[n].get_or_insert(i);
        }
    }
    v
}
