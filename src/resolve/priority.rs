//! Override and order priorities, with the reason each exists (`lib/modules.nix`).
//! The lowest override priority wins; definitions are sorted by ascending order priority.

/// `mkVMOverride`: used by `nixos-rebuild build-vm`, beats even `mkForce`.
pub(crate) const MK_VM_OVERRIDE: f64 = 10.0;
/// `mkForce`: the user's last word.
pub(crate) const MK_FORCE: f64 = 50.0;
/// `mkImageMediaOverride`: image media profiles (installer ISOs) enforce what they depend on,
/// beating plain host definitions but yielding to `mkForce`.
pub(crate) const MK_IMAGE_MEDIA_OVERRIDE: f64 = 60.0;
/// A plain definition (`defaultOverridePriority`).
pub(crate) const DEFAULT_OVERRIDE: f64 = 100.0;
/// `mkDefault`: used in modules to set a default that any plain definition beats.
pub(crate) const MK_DEFAULT: f64 = 1000.0;
/// `mkOptionDefault`, and what an option's `default` is wrapped in.
pub(crate) const MK_OPTION_DEFAULT: f64 = 1500.0;
/// The start of `filterOverrides'` fold: priorities above it vanish when there are two or more
/// definitions.
pub(crate) const FOLD_START: f64 = 9999.0;

/// `mkBefore`.
pub(crate) const MK_BEFORE: f64 = 500.0;
/// A definition without `mkOrder` (`defaultOrderPriority`).
pub(crate) const DEFAULT_ORDER: f64 = 1000.0;
/// `mkAfter`.
pub(crate) const MK_AFTER: f64 = 1500.0;

/// The name a user knows an override priority by.
pub(crate) fn override_name(p: f64) -> String {
    let name = match p {
        MK_VM_OVERRIDE => "mkVMOverride",
        MK_FORCE => "mkForce",
        MK_IMAGE_MEDIA_OVERRIDE => "mkImageMediaOverride",
        DEFAULT_OVERRIDE => "plain",
        MK_DEFAULT => "mkDefault",
        MK_OPTION_DEFAULT => "mkOptionDefault",
        _ => return format!("mkOverride {}", show(p)),
    };
    format!("{name} ({})", show(p))
}

/// A priority number as written.
pub(crate) fn show(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{}", p as i64)
    } else {
        format!("{p}")
    }
}
