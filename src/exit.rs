//! Exit classes: what kind of outcome an error or a result is. Every stage error answers its
//! class itself (`class()`), so a caller maps outcomes to exit codes without looking inside
//! errors; [`Class::code`] is the command line's documented contract with scripts and CI. A
//! run that meets several outcomes ends with the most severe ([`Class::worst`]).

/// An outcome's class, from the least severe to the most (the order [`Class::worst`] uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Success: resolved, built, identical, golden records match, every boot passed.
    Ok,
    /// `diff`: the images differ.
    ImagesDiffer,
    /// `golden check`: a scenario has no golden record yet.
    GoldenNoRecord,
    /// `golden check`: inputs changed since the record was blessed (review, then bless).
    GoldenInputChanged,
    /// `golden check`: a regression (same inputs, another image).
    GoldenRegression,
    /// `boot`, `boot-matrix`: a boot failed its check (or its scenario did not build).
    BootFailed,
    /// The scenario resolved to errors (conflicts, type errors, ...).
    ResolveErrors,
    /// Bad input or usage: a scenario or image that cannot be read, a config the image
    /// cannot be, bytes that are not what a lock pins, a wrong command line.
    BadInput,
    /// A tool the command needs is missing or unusable (QEMU, OVMF, apt, depmod), or the
    /// archive no longer has a pinned package.
    Environment,
    /// An output could not be written (an image, a manifest, a report, standard output).
    Output,
    /// A bug in isoproof: one of its own checks failed.
    Internal,
    /// A signal (Ctrl-C) stopped the command; it left nothing half-written behind.
    Interrupted,
}

impl Class {
    /// Every class, from the least severe to the most.
    pub const ALL: [Class; 12] = [
        Class::Ok,
        Class::ImagesDiffer,
        Class::GoldenNoRecord,
        Class::GoldenInputChanged,
        Class::GoldenRegression,
        Class::BootFailed,
        Class::ResolveErrors,
        Class::BadInput,
        Class::Environment,
        Class::Output,
        Class::Internal,
        Class::Interrupted,
    ];

    /// The exit code. 0, 1 and 2 are the conformance corpus's contract for `resolve`.
    pub const fn code(self) -> u8 {
        match self {
            Class::Ok => 0,
            Class::ResolveErrors => 1,
            Class::BadInput => 2,
            Class::ImagesDiffer => 3,
            Class::GoldenRegression => 4,
            Class::GoldenInputChanged => 5,
            Class::GoldenNoRecord => 6,
            Class::BootFailed => 7,
            Class::Environment => 8,
            Class::Output => 9,
            Class::Internal => 70,
            Class::Interrupted => 130,
        }
    }

    /// The more severe of two.
    pub fn worst(self, other: Class) -> Class {
        self.max(other)
    }
}

/// How a harness error's cause counts.
impl From<isoproof_harness::Cause> for Class {
    fn from(c: isoproof_harness::Cause) -> Class {
        match c {
            isoproof_harness::Cause::Environment => Class::Environment,
            isoproof_harness::Cause::Input => Class::BadInput,
            isoproof_harness::Cause::Output => Class::Output,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_severity_is_the_documented_order() {
        let mut codes: Vec<u8> = Class::ALL.iter().map(|c| c.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Class::ALL.len());
        assert_eq!(
            Class::GoldenRegression.worst(Class::BadInput),
            Class::BadInput
        );
        assert_eq!(
            Class::Interrupted.worst(Class::Internal),
            Class::Interrupted
        );
        assert_eq!(Class::Ok.worst(Class::ImagesDiffer), Class::ImagesDiffer);
        assert!(Class::ALL.windows(2).all(|w| w[0] < w[1]));
    }
}
