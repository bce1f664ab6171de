//! Epitaphs with a meaning: the shape a v0 router gives a clean close.

/// What ends the epitaph of a clean close rewritten by a v0 mux.
const NO_EPITAPH: &str = " reported no epitaph";
/// What follows each name of a v0 router's rewriting of an epitaph.
const REPORTED: &str = " reported: ";

/// Whether `epitaph` is how a v0 router renders a **clean** close
/// (PROTOCOL.md 2.4, "A v0 clean close through a v0 router"):
///
/// ```text
/// {name} reported: {name} reported: ... {name} reported no epitaph
/// ```
///
/// that is zero or more `{name} reported: ` prefixes, then
/// `{name} reported no epitaph`, and nothing after it. A receiver reads
/// such a close as end of file, as if its epitaph were empty (which is
/// clean by the older rule and is *not* matched here).
///
/// A `{name}` is what a v0 mux was told its peer is called: a node id, an
/// address. It may hold spaces, dots, colons and digits, but it must be
/// non-empty, must not begin or end with whitespace, must not begin with
/// `reported` and must not contain ` reported`: so a prefix without a
/// name (`reported: b reported no epitaph`) or with trailing text is not
/// the shape, and every such epitaph stays an abnormal close.
///
/// ```
/// use circuit_frame::is_v0_clean_close;
///
/// assert!(is_v0_clean_close("b reported no epitaph"));
/// assert!(is_v0_clean_close("r reported: b reported no epitaph"));
/// assert!(!is_v0_clean_close("b reported: bye"));
/// assert!(!is_v0_clean_close("connection closed (either by transport or b)"));
/// assert!(!is_v0_clean_close(""));
/// ```
pub fn is_v0_clean_close(epitaph: &str) -> bool {
    let Some(names) = epitaph.strip_suffix(NO_EPITAPH) else {
        return false;
    };
    names.split(REPORTED).all(is_v0_name)
}

/// A name as a v0 mux prints it in an epitaph; see [`is_v0_clean_close`].
fn is_v0_name(name: &str) -> bool {
    !name.is_empty()
        && name.trim() == name
        && !name.starts_with("reported")
        && !name.contains(" reported")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::is_v0_clean_close;

    proptest! {
        #[test]
        fn every_rendering_of_names_is_clean(
            // No `r` after the first character: no name holds `reported`.
            names in prop::collection::vec("[a-z0-9.:\\[\\]-]([a-qs-z0-9 .:-]{0,10}[a-qs-z0-9])?", 1..6),
        ) {
            let (last, prefixes) = names.split_last().unwrap();
            let epitaph: String = prefixes.iter().map(|n| format!("{n} reported: ")).collect();
            let epitaph = format!("{epitaph}{last} reported no epitaph");
            prop_assert!(is_v0_clean_close(&epitaph), "{:?}", epitaph);
            // Anything after it is not the shape.
            let trailing = format!("{epitaph}.");
            prop_assert!(!is_v0_clean_close(&trailing));
        }

        #[test]
        fn any_text_is_judged_without_panicking(epitaph in ".{0,64}") {
            let _ = is_v0_clean_close(&epitaph);
        }
    }

    #[test]
    fn the_shape_without_prefixes_is_clean() {
        assert!(is_v0_clean_close("b reported no epitaph"));
    }

    #[test]
    fn any_number_of_prefixes_is_clean() {
        assert!(is_v0_clean_close("r reported: b reported no epitaph"));
        assert!(is_v0_clean_close(
            "r2 reported: r1 reported: b reported no epitaph"
        ));
        let deep = "r reported: ".repeat(1000) + "b reported no epitaph";
        assert!(is_v0_clean_close(&deep));
    }

    #[test]
    fn names_may_be_addresses_and_hold_spaces() {
        assert!(is_v0_clean_close("127.0.0.1:7000 reported no epitaph"));
        assert!(is_v0_clean_close(
            "[::1]:7000 reported: 127.0.0.1:7000 reported no epitaph"
        ));
        assert!(is_v0_clean_close("node-42.lab reported no epitaph"));
        assert!(is_v0_clean_close(
            "usb device 1 reported: my node reported no epitaph"
        ));
        assert!(is_v0_clean_close("ünïcødé reported no epitaph"));
        assert!(is_v0_clean_close("unreported reported no epitaph"));
    }

    #[test]
    fn an_empty_epitaph_is_not_the_shape() {
        // Clean by the older rule, which callers apply first.
        assert!(!is_v0_clean_close(""));
    }

    #[test]
    fn near_misses_are_not_clean() {
        for epitaph in [
            "b reported: bye",
            "r reported: b reported: bye",
            "connection closed (either by transport or b)",
            "r reported: connection closed (either by transport or b)",
            "reported no epitaph",
            " reported no epitaph",
            "  reported no epitaph",
            "b reported no epitaph!",
            "b reported no epitaph ",
            "b reported no epitaph\n",
            "b reported no epitaph: bye",
            "b reported no epitaph reported no epitaph",
            "reported: b reported no epitaph",
            " reported: b reported no epitaph",
            "r reported: reported: b reported no epitaph",
            "r reported:  reported no epitaph",
            " b reported no epitaph",
            "b  reported no epitaph",
            "b reported  no epitaph",
            "b Reported no epitaph",
            "b reported no epitaphs",
            "b reported: ",
            "bye",
        ] {
            assert!(!is_v0_clean_close(epitaph), "{epitaph:?}");
        }
    }
}
