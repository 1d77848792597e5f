//! The bounds evaluation stays within, so that no scenario — however it is written — makes
//! the resolver overflow its stack, run for ever or exhaust memory. Nix has no such bounds
//! (it overflows its stack at `max-call-depth`, and a string that doubles forty times exhausts
//! it); each bound here is far above what real configurations need, and passing one is an
//! error of kind `limit` that says which bound and where. A leaf: numbers only (what a value
//! costs is `value`'s to say).

/// Nested evaluations at once (an option read by a reference read by an option …): a chain
/// of `!config` or `!format` references is about three frames a link, so this allows chains
/// of some 10,000 options. Nix's `max-call-depth` is 10,000 calls.
pub(crate) const MAX_FRAMES: usize = 30_000;

/// The longest string `!format` may compute, in bytes.
pub(crate) const MAX_STRING: usize = 16 << 20;

/// The deepest a resolved value may nest (written values nest at most 128 levels; deeper
/// ones are built by references).
pub(crate) const MAX_VALUE_DEPTH: usize = 1_000;

/// Bytes of values that merging, `!format`, error messages and hints may build in all:
/// inputs that double in size with every reference (`a: !mkMerge [!config b, !config b]` …)
/// stop here instead of exhausting memory. Each step is charged what it builds (a list
/// element the size of a value, a string its bytes); the resolved config
/// itself is built again and kept, so peak memory stays within a few times this. A scenario
/// of 10,000 options in 60 modules spends about 5 MiB of it.
pub(crate) const MAX_WORK: u64 = 32 << 20;

/// What [`MAX_WORK`] charges comparing a name with one declared option for a hint.
pub(crate) const PER_HINT: usize = 16;

/// Errors reported in full. A scenario with more (20,000 undeclared keys on one line, say)
/// gets the first ones and a count of the rest: every error quotes values and source lines,
/// and hundreds of thousands of them would take gigabytes to say nothing new.
pub(crate) const MAX_ERRORS: usize = 1_000;

/// The stack evaluation runs on: enough for [`MAX_FRAMES`] and [`MAX_VALUE_DEPTH`] with a
/// wide margin (a link of a reference chain takes a few KiB). It is reserved, not touched:
/// memory comes only as deep as evaluation goes.
const STACK: usize = 256 << 20;

/// The frame limit when evaluation runs on a thread's ordinary 8 MiB stack.
const SMALL_STACK_FRAMES: usize = 1_000;

/// Runs `f` on a thread with a large stack, giving it the frame limit that stack allows. If
/// no such thread can be made (a low address-space limit), `f` runs here with the limit an
/// ordinary stack allows: the evaluation is the same, only long chains stop sooner.
pub(crate) fn on_big_stack<R: Send>(f: impl FnOnce(usize) -> R + Send) -> R {
    let cell = std::sync::Mutex::new(Some(f));
    let take = || cell.lock().unwrap_or_else(|e| e.into_inner()).take();
    let spawned = std::thread::scope(|s| {
        let h = std::thread::Builder::new()
            .name("isoproof-eval".into())
            .stack_size(STACK)
            .spawn_scoped(s, || take().map(|f| f(MAX_FRAMES)))
            .ok()?;
        match h.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    match spawned {
        Some(r) => r,
        None => match take() {
            Some(f) => f(SMALL_STACK_FRAMES),
            None => unreachable!("the evaluation ran or its closure is still here"),
        },
    }
}
