//! The one text form of each envelope value: what goes on the wire after `BODY=`, `RET=` and
//! `NOTIFY=`, and what the queue stores, so a value parsed once at the ingress comes back from
//! storage as the same value.

use std::fmt;
use std::str::FromStr;

use super::{Body, Notify, Ret};

/// A stored or received text that is none of a parameter's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {param} value")]
pub struct UnknownValue {
    pub param: &'static str,
    pub value: String,
}

impl UnknownValue {
    fn new(param: &'static str, value: &str) -> Self {
        Self {
            param,
            value: value.to_owned(),
        }
    }
}

impl Body {
    pub const fn as_str(self) -> &'static str {
        match self {
            Body::SevenBit => "7BIT",
            Body::EightBitMime => "8BITMIME",
        }
    }
}

impl FromStr for Body {
    type Err = UnknownValue;

    /// Case-insensitive, as ESMTP keywords are.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [Body::SevenBit, Body::EightBitMime]
            .into_iter()
            .find(|body| body.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| UnknownValue::new("BODY", text))
    }
}

impl Ret {
    pub const fn as_str(self) -> &'static str {
        match self {
            Ret::Full => "FULL",
            Ret::Hdrs => "HDRS",
        }
    }
}

impl FromStr for Ret {
    type Err = UnknownValue;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [Ret::Full, Ret::Hdrs]
            .into_iter()
            .find(|ret| ret.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| UnknownValue::new("RET", text))
    }
}

impl Notify {
    /// What a recipient without NOTIFY gets: failures only (RFC 3461 4.1).
    pub const ABSENT: Notify = Notify {
        never: false,
        success: false,
        failure: true,
        delay: false,
    };
}

impl fmt::Display for Notify {
    /// `NEVER`, or the requested conditions in RFC order: `SUCCESS,FAILURE,DELAY`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.never {
            return f.write_str("NEVER");
        }
        let flags = [
            (self.success, "SUCCESS"),
            (self.failure, "FAILURE"),
            (self.delay, "DELAY"),
        ];
        let mut first = true;
        for (_, name) in flags.iter().filter(|(on, _)| *on) {
            if !first {
                f.write_str(",")?;
            }
            f.write_str(name)?;
            first = false;
        }
        Ok(())
    }
}

impl FromStr for Notify {
    type Err = UnknownValue;

    /// `NEVER` alone, or a list of `SUCCESS`, `FAILURE` and `DELAY` in any case and order.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut notify = Notify::default();
        for item in text.split(',') {
            match item.to_ascii_uppercase().as_str() {
                "NEVER" => notify.never = true,
                "SUCCESS" => notify.success = true,
                "FAILURE" => notify.failure = true,
                "DELAY" => notify.delay = true,
                _ => return Err(UnknownValue::new("NOTIFY", text)),
            }
        }
        if notify.never && (notify.success || notify.failure || notify.delay) {
            return Err(UnknownValue::new("NOTIFY", text));
        }
        Ok(notify)
    }
}

macro_rules! try_from_string {
    ($($value:ty),*) => {$(
        /// What a database column decodes through.
        impl TryFrom<String> for $value {
            type Error = UnknownValue;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                text.parse()
            }
        }
    )*};
}
try_from_string!(Body, Ret, Notify);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_from_its_text() {
        for body in [Body::SevenBit, Body::EightBitMime] {
            assert_eq!(body.as_str().parse(), Ok(body));
        }
        for ret in [Ret::Full, Ret::Hdrs] {
            assert_eq!(ret.as_str().parse(), Ok(ret));
        }
        // Every value a client can give: NEVER alone, or a non-empty set of the other three.
        let mut notifies = vec![Notify {
            never: true,
            ..Notify::default()
        }];
        notifies.extend((1..8u8).map(|bits| Notify {
            never: false,
            success: bits & 1 != 0,
            failure: bits & 2 != 0,
            delay: bits & 4 != 0,
        }));
        for notify in notifies {
            assert_eq!(notify.to_string().parse(), Ok(notify), "{notify}");
        }
    }

    #[test]
    fn texts_are_case_insensitive_and_unknown_ones_are_named() {
        assert_eq!("8bitmime".parse(), Ok(Body::EightBitMime));
        assert_eq!("hdrs".parse(), Ok(Ret::Hdrs));
        assert_eq!(
            "delay,Success".to_string().try_into(),
            Ok(Notify {
                success: true,
                delay: true,
                ..Notify::default()
            })
        );
        assert_eq!(
            "BINARYMIME".parse::<Body>(),
            Err(UnknownValue::new("BODY", "BINARYMIME"))
        );
        assert_eq!(
            Ret::try_from("ALL".to_string())
                .expect_err("ALL is no RET")
                .to_string(),
            r#""ALL" is not a RET value"#
        );
        for bad in ["", "NEVER,SUCCESS", "FAILURE,", "SUCCESS\r\nDATA"] {
            assert!(bad.parse::<Notify>().is_err(), "{bad:?}");
        }
        assert_eq!(Notify::ABSENT.to_string(), "FAILURE");
    }
}
