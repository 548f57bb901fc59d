//! The peer's identity as its certificate states it: the subject's common name (CN),
//! read straight from the DER, and the rule that says which hypervisor that CN names.
//!
//! The rule (DESIGN.md §3, OVS's PKI conventions): `ovs-pki req+sign NAME` writes a
//! subject whose CN is `NAME id:<uuid>` (older ovs-pki versions append a date after
//! it). The *name* of a CN is its text up to the first whitespace, and a certificate
//! names the hypervisor whose `external_ids:system-id` equals that name exactly (case
//! included). A CN without whitespace is a name in full. So a system-id containing
//! whitespace can never be named, and `hv1` does not name `hv10`.
//!
//! Only what Weft needs of X.509 is parsed here (the path to the subject's CN); the
//! certificate's chain, validity and signature are rustls's and webpki's job and were
//! checked before this runs.

/// The subject's common name of a peer certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The whole CN, as written (for logs).
    pub common_name: String,
}

impl PeerIdentity {
    /// Reads the subject CN of a DER certificate; `None` if the certificate has none or
    /// its DER is not what X.509 says (never panics on any input).
    pub fn from_der(cert: &[u8]) -> Option<PeerIdentity> {
        subject_common_name(cert).map(|common_name| PeerIdentity { common_name })
    }

    /// The name part of the CN (see the module's rule).
    pub fn name(&self) -> &str {
        cn_name(&self.common_name)
    }

    /// Whether this certificate names the hypervisor with this system-id.
    pub fn names(&self, system_id: &str) -> bool {
        !system_id.is_empty() && self.name() == system_id
    }
}

/// The name part of a CN: up to the first whitespace.
pub fn cn_name(common_name: &str) -> &str {
    common_name
        .trim_start()
        .split(char::is_whitespace)
        .next()
        .unwrap_or("")
}

/// One DER element: its tag, its contents and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
/// `[0] EXPLICIT Version` of a v2/v3 certificate.
const VERSION: u8 = 0xa0;
/// id-at-commonName, 2.5.4.3.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// Certificate → tbsCertificate → subject (the sixth field, after an optional version)
/// → the first RDN attribute whose type is commonName.
fn subject_common_name(cert: &[u8]) -> Option<String> {
    let (tag, certificate, _) = element(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = element(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    let (tag, _, after) = element(rest)?;
    if tag == VERSION {
        rest = after;
    }
    // serialNumber, signature, issuer, validity.
    for _ in 0..4 {
        rest = element(rest)?.2;
    }
    let (tag, mut subject, _) = element(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    while !subject.is_empty() {
        let (tag, mut rdn, next) = element(subject)?;
        subject = next;
        if tag != SET {
            return None;
        }
        while !rdn.is_empty() {
            let (tag, attribute, next) = element(rdn)?;
            rdn = next;
            if tag != SEQUENCE {
                return None;
            }
            let (tag, oid, value) = element(attribute)?;
            if tag == OID && oid == OID_COMMON_NAME {
                let (tag, text, _) = element(value)?;
                return directory_string(tag, text);
            }
        }
    }
    None
}

/// UTF8String, PrintableString, IA5String, T61String (read as Latin-1) or BMPString.
fn directory_string(tag: u8, text: &[u8]) -> Option<String> {
    match tag {
        0x0c | 0x13 | 0x16 => String::from_utf8(text.to_vec()).ok(),
        0x14 => Some(text.iter().map(|&b| char::from(b)).collect()),
        0x1e => {
            let units: Vec<u16> = text
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate's DER built from parts, so each test shows the subject it holds.
    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            let len = (content.len() as u32).to_be_bytes();
            let skip = len.iter().take_while(|&&b| b == 0).count();
            out.push(0x80 | (4 - skip) as u8);
            out.extend_from_slice(&len[skip..]);
        }
        out.extend_from_slice(content);
        out
    }

    fn attribute(oid: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
        der(
            SET,
            &der(SEQUENCE, &[der(OID, oid), der(tag, value)].concat()),
        )
    }

    fn certificate(subject: &[Vec<u8>], with_version: bool) -> Vec<u8> {
        let mut tbs = Vec::new();
        if with_version {
            tbs.extend(der(VERSION, &der(0x02, &[2])));
        }
        tbs.extend(der(0x02, &[7])); // serialNumber
        tbs.extend(der(SEQUENCE, &der(OID, &[0x2a, 0x86, 0x48]))); // signature
        tbs.extend(der(
            SEQUENCE,
            &attribute(OID_COMMON_NAME, 0x0c, b"OVS switchca CA"),
        )); // issuer
        tbs.extend(der(
            SEQUENCE,
            &[der(0x17, b"261206000000Z"), der(0x17, b"361206000000Z")].concat(),
        ));
        tbs.extend(der(SEQUENCE, &subject.concat()));
        // A long subjectPublicKeyInfo makes the outer lengths use the long form.
        tbs.extend(der(SEQUENCE, &[0u8; 300]));
        der(
            SEQUENCE,
            &[der(SEQUENCE, &tbs), der(SEQUENCE, &[]), der(0x03, &[0])].concat(),
        )
    }

    #[test]
    fn reads_the_subject_cn_as_ovs_pki_writes_it() {
        let subject = [
            attribute(&[0x55, 0x04, 0x06], 0x13, b"US"),
            attribute(&[0x55, 0x04, 0x0a], 0x0c, b"Open vSwitch"),
            attribute(
                OID_COMMON_NAME,
                0x0c,
                b"hv1 id:f03c202c-eccd-47f3-897e-4f5e0761e421",
            ),
        ];
        let id = PeerIdentity::from_der(&certificate(&subject, true)).expect("CN");
        assert_eq!(
            id.common_name,
            "hv1 id:f03c202c-eccd-47f3-897e-4f5e0761e421"
        );
        assert_eq!(id.name(), "hv1");
        assert!(id.names("hv1"));
        assert!(!id.names("hv10"));
        assert!(!id.names("hv"));
        assert!(!id.names(""));
    }

    #[test]
    fn the_issuer_cn_is_not_the_subject_cn() {
        let subject = [attribute(&[0x55, 0x04, 0x0a], 0x0c, b"Open vSwitch")];
        assert_eq!(PeerIdentity::from_der(&certificate(&subject, true)), None);
    }

    #[test]
    fn v1_certificates_and_other_string_types() {
        let subject = [attribute(OID_COMMON_NAME, 0x13, b"hv2")];
        let id = PeerIdentity::from_der(&certificate(&subject, false)).expect("CN");
        assert!(id.names("hv2"));
        let bmp: Vec<u8> = "hv3 id:x"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        let subject = [attribute(OID_COMMON_NAME, 0x1e, &bmp)];
        let id = PeerIdentity::from_der(&certificate(&subject, true)).expect("CN");
        assert_eq!(id.name(), "hv3");
    }

    #[test]
    fn names_follow_the_first_whitespace_rule() {
        assert_eq!(cn_name("hv1 id:1234 2026 Dec 06"), "hv1");
        assert_eq!(cn_name("hv1"), "hv1");
        assert_eq!(cn_name("  hv1\tid:1"), "hv1");
        assert_eq!(cn_name(""), "");
    }

    #[test]
    fn garbage_and_truncated_input_never_panic() {
        let good = certificate(&[attribute(OID_COMMON_NAME, 0x0c, b"hv1")], true);
        for n in 0..good.len() {
            let _ = PeerIdentity::from_der(&good[..n]);
        }
        assert_eq!(PeerIdentity::from_der(&[]), None);
        assert_eq!(
            PeerIdentity::from_der(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            None
        );
        assert_eq!(PeerIdentity::from_der(&[0x30, 0x80]), None);
        let mut flipped = good.clone();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = PeerIdentity::from_der(&flipped);
            flipped[i] ^= 0xff;
        }
    }
}
