//! Hints that know where they come from: a kata's stage, and so its README section.
//!
//! Every failing check ends with a hint, and every hint ends by pointing at the README section
//! that explains it. A suite names its stages once and makes every hint from them, so the
//! pointer is never typed by hand (and never wrong):
//!
//! ```
//! use kata_harness::hint::Stage;
//!
//! const STAGE1: Stage = Stage::new("ticker", 1);
//!
//! let hint = STAGE1.hint("ticks fall at 50, 100, ... ms, not at 0 ms");
//! assert_eq!(
//!     hint.to_string(),
//!     "ticks fall at 50, 100, ... ms, not at 0 ms (exercises/ticker/README.md, stage 1)"
//! );
//! ```
//!
//! A hint speaks to the check it comes with: say what the difference usually means and what to
//! change, never only "see the README".

use std::borrow::Cow;
use std::fmt;

/// One stage of one kata: where its hints point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    kata: &'static str,
    number: u32,
}

impl Stage {
    /// Stage `number` of the kata whose directory is `exercises/<kata>`.
    pub const fn new(kata: &'static str, number: u32) -> Self {
        Self { kata, number }
    }

    /// The kata's name.
    pub fn kata(self) -> &'static str {
        self.kata
    }

    /// The stage's number.
    pub fn number(self) -> u32 {
        self.number
    }

    /// A hint for a check of this stage.
    pub fn hint(self, text: impl Into<Cow<'static, str>>) -> Hint {
        Hint {
            text: text.into(),
            stage: self,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exercises/{}/README.md, stage {}",
            self.kata, self.number
        )
    }
}

/// What to try when a check fails, and the README section that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    text: Cow<'static, str>,
    stage: Stage,
}

impl Hint {
    /// The advice alone, without the pointer.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The stage it belongs to.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The same pointer with other advice: for a check that knows better than the test's
    /// general hint what went wrong.
    pub fn instead(&self, text: impl Into<Cow<'static, str>>) -> Hint {
        self.stage.hint(text)
    }

    /// The advice with `more` after it, for a check that adds what it found.
    pub fn and(&self, more: impl fmt::Display) -> Hint {
        self.stage.hint(format!("{}; {more}", self.text))
    }
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.text, self.stage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAGE2: Stage = Stage::new("pclimit", 2);

    #[test]
    fn a_hint_ends_with_its_readme_section() {
        let hint = STAGE2.hint(format!("{} slots", 3));
        assert_eq!(
            hint.to_string(),
            "3 slots (exercises/pclimit/README.md, stage 2)"
        );
        assert_eq!(hint.text(), "3 slots");
        assert_eq!(hint.stage().number(), 2);
        assert_eq!(hint.stage().kata(), "pclimit");
    }

    #[test]
    fn a_hint_can_be_replaced_or_extended() {
        let hint = STAGE2.hint("first");
        assert_eq!(hint.instead("second").text(), "second");
        assert_eq!(hint.and("then more").text(), "first; then more");
        assert_eq!(hint.and("x").stage(), STAGE2);
    }
}
