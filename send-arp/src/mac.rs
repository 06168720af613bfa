//! MAC addresses as Piranha's `send_arp` read them.

use ipvs_core::wire::EthernetAddress;

/// Why a MAC address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacError {
    /// A character where a hex digit of byte `byte` (0-based) was expected.
    #[error("{text:?} is not a MAC address: byte {} needs two hex digits", byte + 1)]
    NotHex {
        /// The text given.
        text: String,
        /// Index of the byte that could not be read.
        byte: usize,
    },
    /// Characters after the sixth byte.
    #[error("{text:?} is not a MAC address: unexpected characters after the sixth byte")]
    Trailing {
        /// The text given.
        text: String,
    },
}

/// Parses a MAC address as Piranha did: exactly 12 hex digits, either case, with an optional
/// `:` after each byte (`0200C6120002`, `02:00:c6:12:00:02`, even `0200:c6:120002`).
/// Unlike Piranha, characters after the twelfth digit (other than one `:`) are refused.
pub fn parse_mac(text: &str) -> Result<EthernetAddress, MacError> {
    let mut rest = text.as_bytes();
    let mut mac = [0u8; 6];
    for (i, byte) in mac.iter_mut().enumerate() {
        let not_hex = || MacError::NotHex {
            text: text.to_owned(),
            byte: i,
        };
        let (hi, lo) = match rest {
            [hi, lo, tail @ ..] => {
                rest = tail;
                (hex(*hi).ok_or_else(not_hex)?, hex(*lo).ok_or_else(not_hex)?)
            }
            _ => return Err(not_hex()),
        };
        *byte = hi << 4 | lo;
        if let [b':', tail @ ..] = rest {
            rest = tail;
        }
    }
    if !rest.is_empty() {
        return Err(MacError::Trailing {
            text: text.to_owned(),
        });
    }
    Ok(EthernetAddress(mac))
}

fn hex(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: EthernetAddress = EthernetAddress([0x02, 0x00, 0xc6, 0x12, 0x00, 0xab]);

    #[test]
    fn piranha_spellings() {
        for text in [
            "0200C61200AB",
            "0200c61200ab",
            "02:00:c6:12:00:ab",
            "02:00:C6:12:00:AB:",
            "0200:c6:1200ab",
        ] {
            assert_eq!(parse_mac(text), Ok(M), "{text}");
        }
        assert_eq!(parse_mac("ffffffffffff"), Ok(EthernetAddress::BROADCAST));
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            parse_mac("0200c61200a"),
            Err(MacError::NotHex { byte: 5, .. })
        ));
        assert!(matches!(
            parse_mac("02-00-c6-12-00-ab"),
            Err(MacError::NotHex { byte: 1, .. })
        ));
        assert!(matches!(
            parse_mac("2:0:c6:12:0:ab"),
            Err(MacError::NotHex { byte: 0, .. })
        ));
        assert!(matches!(
            parse_mac(""),
            Err(MacError::NotHex { byte: 0, .. })
        ));
        assert!(matches!(
            parse_mac("0200c61200abff"),
            Err(MacError::Trailing { .. })
        ));
        assert!(matches!(
            parse_mac("0200c61200ab::"),
            Err(MacError::Trailing { .. })
        ));
        // Non-ASCII input is refused, never sliced mid-character.
        assert!(parse_mac("0200c61200aé").is_err());
    }
}
