//! Directory building: the source tree flattened into numbered nodes, Rock Ridge relocation
//! of directories deeper than ECMA-119's eight levels (RRIP 4.1.5), each tree's directories
//! in path-table order with their records (identifiers, Rock Ridge entries, continuation
//! spill), and where directories go on disk.

use std::ops::Range;

use super::Options;
use crate::image::clock::Clock;
use crate::image::format::iso9660::{self, flags, DirectoryRecord, SECTOR};
use crate::image::format::joliet;
use crate::image::format::rockridge as rr;
use crate::image::format::structure::Tree;
use crate::image::format::susp;
use crate::image::write::tree::{Entry, EntryKind};

/// The largest extent a directory record can describe, a whole number of sectors (files
/// this size and larger become multi-extent, ISO level 3).
pub const MAX_EXTENT: u64 = 0xFFFF_F800;

/// ECMA-119 6.8.2.1: a hierarchy has at most eight levels, the root being the first.
const MAX_LEVELS: usize = 8;

/// The Rock Ridge relocation directory's name, as mkisofs names it. It stands in the root,
/// marked `RE` like the directories it holds, so Rock Ridge readers hide it.
const RR_MOVED_NAME: &str = "rr_moved";

/// The source tree flattened: node 0 is the root, and every node knows its entry and its
/// children, so planning refers to entries by number.
pub(super) struct Nodes<'a> {
    /// Entry of each node.
    pub entries: Vec<&'a Entry>,
    /// Children of each node, in name order.
    pub children: Vec<Vec<usize>>,
}

impl<'a> Nodes<'a> {
    /// Numbers every entry of `root`'s tree (depth-first, with an explicit stack).
    pub fn new(root: &'a Entry) -> Nodes<'a> {
        let mut n = Nodes {
            entries: vec![root],
            children: vec![Vec::new()],
        };
        let mut todo = vec![0usize];
        while let Some(i) = todo.pop() {
            let kids: Vec<usize> = n.entries[i]
                .children()
                .iter()
                .map(|c| {
                    n.entries.push(c);
                    n.children.push(Vec::new());
                    n.entries.len() - 1
                })
                .collect();
            todo.extend(&kids);
            n.children[i] = kids;
        }
        n
    }

    fn is_dir(&self, i: usize) -> bool {
        matches!(self.entries[i].kind, EntryKind::Dir(_))
    }
}

/// A directory of the ISO 9660 hierarchy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Node {
    /// A directory of the source tree.
    Source(usize),
    /// `rr_moved`, which holds relocated directories.
    RrMoved,
}

/// One directory that moves to `rr_moved`.
pub(super) struct Relocation {
    /// The directory.
    dir: usize,
    /// Where it really is.
    real_parent: usize,
    /// How many relocated directories it sits in.
    nesting: usize,
}

/// The directories that would sit deeper than ECMA-119 allows, in tree order. Each moves
/// to `rr_moved` (level 2), so its subtree counts from level 3 and may move again.
pub(super) fn relocations(nodes: &Nodes<'_>) -> Vec<Relocation> {
    let mut out = Vec::new();
    // A depth-first walk in tree order, with an explicit stack of (directory, its level,
    // its nesting, the next child to look at).
    let mut stack = vec![(0usize, 1usize, 0usize, 0usize)];
    while let Some((dir, level, nesting, next)) = stack.pop() {
        let kids = &nodes.children[dir];
        let Some(pos) = kids[next..].iter().position(|&c| nodes.is_dir(c)) else {
            continue;
        };
        let c = kids[next + pos];
        stack.push((dir, level, nesting, next + pos + 1));
        if level == MAX_LEVELS {
            out.push(Relocation {
                dir: c,
                real_parent: dir,
                nesting,
            });
            stack.push((c, 3, nesting + 1, 0));
        } else {
            stack.push((c, level + 1, nesting, 0));
        }
    }
    out
}

/// What a record points at.
#[derive(Clone, Copy, Debug)]
pub(super) enum Target {
    /// A directory of the same tree (by index).
    Dir(usize),
    /// The `k`-th extent of a file (by node).
    Data(usize, usize),
    /// Nothing (a symlink, or an empty extent).
    None,
}

/// A directory record before encoding.
pub(super) struct Rec {
    /// Its identifier.
    pub name: Vec<u8>,
    /// The name readers show for it (Rock Ridge's, or the identifier without its version).
    pub shown: String,
    /// ECMA-119 file flags.
    pub flags: u8,
    /// What it points at.
    pub target: Target,
    /// System use entries inside the record.
    pub inline: Vec<u8>,
    /// System use entries for continuation areas.
    pub spill: Vec<Vec<u8>>,
    /// This record's continuation chunks: offset, length, and the `spill` entries they hold.
    pub chunks: Vec<(u64, usize, Range<usize>)>,
    /// The source directory a leading `CL` or `PL` entry points at, filled in when sectors
    /// are known.
    pub link: Option<usize>,
}

/// One directory of a tree.
pub(super) struct Dir {
    /// What it is.
    pub node: Node,
    /// The parent in the ISO 9660 hierarchy (index).
    pub parent: usize,
    /// The real parent of a relocated directory (its ".." carries `PL`).
    real_parent: Option<usize>,
    /// Its identifier.
    pub name: Vec<u8>,
    /// The path readers show it at (`/` for the root).
    pub path: String,
    /// Its records.
    pub recs: Vec<Rec>,
    /// Its extent's size.
    pub size: u64,
    /// Its first sector, once placed.
    pub sector: u64,
    /// Directories are placed on disk by group, highest first (see [`place`]).
    group: usize,
}

pub(super) fn rec_len(r: &Rec) -> usize {
    DirectoryRecord::len_for(
        r.name.len(),
        r.inline.len() + if r.spill.is_empty() { 0 } else { susp::CE_LEN },
    )
}

/// Packs records into sectors (a record never crosses a sector boundary): the extent size.
fn dir_size(recs: &[Rec]) -> u64 {
    let mut used = 0u64;
    for r in recs {
        let l = rec_len(r) as u64;
        if used % SECTOR + l > SECTOR {
            used = used.next_multiple_of(SECTOR);
        }
        used += l;
    }
    used.next_multiple_of(SECTOR).max(SECTOR)
}

/// How many directory records a file of `size` bytes needs.
pub(super) fn extents_of(size: u64) -> usize {
    if size == 0 {
        1
    } else {
        size.div_ceil(MAX_EXTENT) as usize
    }
}

/// An ISO 9660 identifier as readers show it: the version (`;1`) and a trailing dot removed.
fn shown_identifier(id: &str) -> String {
    id.split(';')
        .next()
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_string()
}

/// The Rock Ridge entries of one record.
fn rr_entries(
    mode: u32,
    symlink: Option<&str>,
    name: Option<&str>,
    nlink: u32,
    clock: Clock,
) -> Vec<Vec<u8>> {
    let mut v = vec![
        rr::px(mode, nlink),
        rr::tf(crate::image::format::iso9660::DirDateTime::at(
            clock.civil(),
        )),
    ];
    if let Some(n) = name {
        v.extend(rr::nm(n));
    }
    if let Some(t) = symlink {
        v.extend(rr::sl(t));
    }
    v
}

/// What the planner needs of one node of the ISO 9660 hierarchy.
struct Facts<'n> {
    mode: u32,
    nlink: u32,
    symlink: Option<&'n str>,
    name: &'n str,
    is_dir: bool,
}

/// Builds one tree's directories breadth-first, which is also path-table order. With Rock
/// Ridge, the primary tree relocates directories deeper than eight levels to `rr_moved`,
/// leaving a `CL` placeholder behind.
pub(super) fn build(
    nodes: &Nodes<'_>,
    moved: &[Relocation],
    opts: &Options,
    tree: Tree,
) -> Vec<Dir> {
    let rr_on = opts.rock_ridge && tree == Tree::Primary;
    let clock = opts.clock;
    let mut relocated: Vec<Option<&Relocation>> = vec![None; nodes.entries.len()];
    if rr_on {
        for m in moved {
            relocated[m.dir] = Some(m);
        }
    }
    let facts = |n: Node| -> Facts<'_> {
        match n {
            Node::RrMoved => Facts {
                mode: 0o040755,
                nlink: 2 + moved.len() as u32,
                symlink: None,
                name: RR_MOVED_NAME,
                is_dir: true,
            },
            Node::Source(i) => {
                let e = nodes.entries[i];
                Facts {
                    mode: e.mode(),
                    nlink: match &e.kind {
                        EntryKind::Dir(_) => {
                            2 + nodes.children[i]
                                .iter()
                                .filter(|&&c| nodes.is_dir(c))
                                .count() as u32
                        }
                        _ => 1,
                    },
                    symlink: match &e.kind {
                        EntryKind::Symlink(t) => Some(t),
                        _ => None,
                    },
                    name: &e.name,
                    is_dir: nodes.is_dir(i),
                }
            }
        }
    };
    let mut dirs = vec![Dir {
        node: Node::Source(0),
        parent: 0,
        real_parent: None,
        name: vec![0],
        path: "/".into(),
        recs: Vec::new(),
        size: 0,
        sector: 0,
        group: usize::MAX,
    }];
    let mut i = 0;
    while i < dirs.len() {
        let in_rr_moved = dirs[i].node == Node::RrMoved;
        let kids: Vec<Node> = match dirs[i].node {
            Node::RrMoved => moved.iter().map(|m| Node::Source(m.dir)).collect(),
            Node::Source(n) => nodes.children[n].iter().map(|&c| Node::Source(c)).collect(),
        };
        // Names, assigned in source-name order so disambiguation is deterministic:
        // (identifier, the name readers show, node).
        let mut named: Vec<(Vec<u8>, String, Node)> = Vec::new();
        if tree == Tree::Joliet {
            // Names Joliet holds unchanged are placed first, so a mapped name ("a?b" → "a_b")
            // never takes the place of a real one ("a_b").
            let mut taken: Vec<Vec<u16>> = Vec::new();
            for exact in [true, false] {
                for &c in &kids {
                    let f = facts(c);
                    if joliet::holds(f.name) != exact {
                        continue;
                    }
                    let n = joliet::joliet_name(f.name, f.is_dir, &|u| {
                        taken.iter().any(|t| same_joliet_name(t, u))
                    });
                    taken.push(n.clone());
                    let shown = shown_identifier(&String::from_utf16_lossy(&n));
                    named.push((joliet::to_bytes(&n), shown, c));
                }
            }
            named.sort_by(|a, b| a.0.cmp(&b.0));
        } else {
            let mut taken: Vec<String> = Vec::new();
            let extra = (i == 0 && !moved.is_empty() && rr_on).then_some(Node::RrMoved);
            for c in kids.iter().copied().chain(extra) {
                let f = facts(c);
                let n = iso9660::primary_name(f.name, f.is_dir, &|s| taken.iter().any(|t| t == s));
                taken.push(n.clone());
                let shown = if rr_on {
                    f.name.to_string()
                } else {
                    shown_identifier(&n)
                };
                named.push((n.into_bytes(), shown, c));
            }
            named.sort_by(|a, b| iso9660::record_order(&a.0, &b.0));
        }
        let mut recs = Vec::new();
        // "." and ".."; a relocated directory's ".." describes its real parent.
        let parent_node = dirs[i]
            .real_parent
            .map_or(dirs[dirs[i].parent].node, Node::Source);
        for (k, n) in [(0u8, dirs[i].node), (1u8, parent_node)] {
            let mut entries = Vec::new();
            let mut link = None;
            if rr_on {
                if k == 0 && i == 0 {
                    entries.push(susp::sp());
                }
                if k == 1 && dirs[i].real_parent.is_some() {
                    entries.push(rr::pl(0));
                    link = dirs[i].real_parent;
                }
                let f = facts(n);
                entries.extend(rr_entries(f.mode, f.symlink, None, f.nlink, clock));
                if k == 0 && i == 0 {
                    entries.push(rr::er());
                }
            }
            let room = 255 - DirectoryRecord::len_for(1, 0);
            let s = susp::split(entries, room);
            let target = if k == 0 {
                Target::Dir(i)
            } else {
                Target::Dir(dirs[i].parent)
            };
            recs.push(Rec {
                name: vec![k],
                shown: String::new(),
                flags: flags::DIRECTORY,
                target,
                inline: s.inline,
                spill: s.spill,
                chunks: Vec::new(),
                link,
            });
        }
        for (name, shown, c) in named {
            let f = facts(c);
            let reloc = match c {
                Node::Source(n) => relocated[n],
                Node::RrMoved => None,
            };
            // A deep directory leaves a placeholder (a file, in ISO 9660 terms) behind.
            let placeholder = !in_rr_moved && reloc.is_some();
            let n_ext = match c {
                Node::Source(n) => match &nodes.entries[n].kind {
                    EntryKind::File { size, .. } => extents_of(*size),
                    _ => 1,
                },
                Node::RrMoved => 1,
            };
            let target_dir = if f.is_dir && !placeholder {
                let path = if i == 0 {
                    format!("/{shown}")
                } else {
                    format!("{}/{shown}", dirs[i].path)
                };
                dirs.push(Dir {
                    node: c,
                    parent: i,
                    real_parent: reloc.filter(|_| in_rr_moved).map(|m| m.real_parent),
                    name: name.clone(),
                    path,
                    recs: Vec::new(),
                    size: 0,
                    sector: 0,
                    group: match reloc {
                        _ if c == Node::RrMoved => usize::MAX,
                        Some(m) if in_rr_moved => m.nesting + 1,
                        _ if i == 0 => 0,
                        _ => dirs[i].group,
                    },
                });
                Some(dirs.len() - 1)
            } else {
                None
            };
            for k in 0..n_ext {
                let mut entries = Vec::new();
                let mut link = None;
                if rr_on {
                    if let (true, Node::Source(n)) = (placeholder, c) {
                        entries.push(rr::cl(0));
                        link = Some(n);
                    }
                    entries.extend(rr_entries(f.mode, f.symlink, Some(f.name), f.nlink, clock));
                    if in_rr_moved || c == Node::RrMoved {
                        entries.push(rr::re());
                    }
                }
                let room = 255 - DirectoryRecord::len_for(name.len(), 0);
                let s = susp::split(entries, room);
                let mut fl = if target_dir.is_some() {
                    flags::DIRECTORY
                } else {
                    0
                };
                if k + 1 < n_ext {
                    fl |= flags::MULTI_EXTENT;
                }
                let target = match (target_dir, c) {
                    (Some(d), _) => Target::Dir(d),
                    (None, Node::Source(n))
                        if matches!(nodes.entries[n].kind, EntryKind::File { .. }) =>
                    {
                        Target::Data(n, k)
                    }
                    _ => Target::None,
                };
                recs.push(Rec {
                    name: name.clone(),
                    shown: shown.clone(),
                    flags: fl,
                    target,
                    inline: s.inline,
                    spill: s.spill,
                    chunks: Vec::new(),
                    link,
                });
            }
        }
        dirs[i].size = dir_size(&recs);
        dirs[i].recs = recs;
        i += 1;
    }
    dirs
}

/// Gives directories their sectors. Path tables list them breadth-first, but on disk the
/// root and `rr_moved` come first, then the relocated subtrees, most deeply nested first,
/// then the rest. libarchive reads directories in sector order and connects a `CL`
/// placeholder when it meets it; a nested one connects only while its outer relocation is
/// still unconnected, so inner placeholders must be met first.
pub(super) fn place(dirs: &mut [Dir], next: &mut u64) {
    let mut order: Vec<usize> = (0..dirs.len()).collect();
    order.sort_by_key(|&k| std::cmp::Reverse(dirs[k].group));
    for k in order {
        dirs[k].sector = *next;
        *next += dirs[k].size / SECTOR;
    }
}

/// Joliet readers (Windows) compare names case-insensitively, so collisions do too.
fn same_joliet_name(a: &[u16], b: &[u16]) -> bool {
    let low = |u: u16| {
        if (0x41..=0x5A).contains(&u) {
            u + 0x20
        } else {
            u
        }
    };
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| low(*x) == low(*y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::clock::Clock;

    fn dir(name: &str, kids: Vec<Entry>) -> Entry {
        Entry {
            name: name.into(),
            perm: 0o755,
            kind: EntryKind::Dir(kids),
        }
    }

    /// A chain of `n` directories d1/d2/…/dn.
    fn chain(n: usize) -> Entry {
        (1..=n)
            .rev()
            .fold(None, |inner: Option<Entry>, k| {
                Some(dir(&format!("d{k}"), inner.into_iter().collect()))
            })
            .unwrap()
    }

    #[test]
    fn relocation_starts_at_level_nine_and_nests() {
        // root = level 1, so d1…d7 are levels 2…8: nothing moves.
        let root = dir("", vec![chain(7)]);
        assert!(relocations(&Nodes::new(&root)).is_empty());
        // d8 would be level 9: it moves, and its subtree counts from level 3 (d8 … d13 are
        // levels 3…8), so d14 moves again, from inside d8.
        let root = dir("", vec![chain(14)]);
        let nodes = Nodes::new(&root);
        let r = relocations(&nodes);
        let names: Vec<(&str, &str, usize)> = r
            .iter()
            .map(|m| {
                (
                    nodes.entries[m.dir].name.as_str(),
                    nodes.entries[m.real_parent].name.as_str(),
                    m.nesting,
                )
            })
            .collect();
        assert_eq!(names, [("d8", "d7", 0), ("d14", "d13", 1)]);
        // Two deep directories side by side: under a/ (level 2), d7 would be level 9.
        let root = dir("", vec![dir("a", vec![chain(8)]), dir("b", vec![chain(8)])]);
        let nodes = Nodes::new(&root);
        let found: Vec<&str> = relocations(&nodes)
            .iter()
            .map(|m| nodes.entries[m.dir].name.as_str())
            .collect();
        assert_eq!(found, ["d7", "d7"]);
    }

    #[test]
    fn directories_are_placed_inner_relocations_first() {
        let root = dir("", vec![chain(20)]);
        let nodes = Nodes::new(&root);
        let moved = relocations(&nodes);
        let dirs = build(
            &nodes,
            &moved,
            &Options::new("T", Clock::at(0)),
            Tree::Primary,
        );
        let mut placed: Vec<&Dir> = dirs.iter().collect();
        placed.sort_by_key(|d| std::cmp::Reverse(d.group));
        let order: Vec<String> = placed
            .iter()
            .map(|d| String::from_utf8_lossy(&d.name).into_owned())
            .collect();
        // Root and rr_moved, then d20's subtree (moved twice over), d14's, d8's, the rest.
        assert_eq!(order[..2], ["\0", "RR_MOVED"]);
        let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
        assert!(pos("D20") < pos("D14") && pos("D14") < pos("D8") && pos("D8") < pos("D1"));
        assert!(pos("D19") < pos("D8") && pos("D13") < pos("D7"));
        // Paths are those readers show: relocated directories under /rr_moved.
        let paths: Vec<&str> = dirs.iter().map(|d| d.path.as_str()).collect();
        assert!(paths.contains(&"/rr_moved/d8"), "{paths:?}");
        assert!(paths.contains(&"/d1/d2/d3/d4/d5/d6/d7"), "{paths:?}");
    }
}
