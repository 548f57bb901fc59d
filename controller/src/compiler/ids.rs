//! The numbers the pipeline is made of: table ids, cookies, group ids. Shared by the
//! stages, the reconciler (which dumps only Weft's cookies) and `trace`.

use uuid::Uuid;

/// Top 16 bits of every Weft cookie (`"WE"`).
pub const COOKIE_WEFT: u64 = 0x5745_0000_0000_0000;
/// Mask selecting [`COOKIE_WEFT`] in a cookie (flow-stats filter, delete-by-cookie).
pub const COOKIE_MASK: u64 = 0xffff_0000_0000_0000;
/// Cookie of the pipeline's own flows (table-miss defaults) that serve no logical object.
pub const COOKIE_PIPELINE: u64 = COOKIE_WEFT;

/// Top 16 bits (`"LE"`) of the flows OVS learns from flood VTEPs' traffic, plus the VNI in
/// the low bits. Outside Weft's cookie space on purpose: the reconciler dumps and diffs
/// only [`COOKIE_WEFT`] flows, so it never deletes what the switch learned.
pub const COOKIE_LEARNED: u64 = 0x4c45_0000_0000_0000;

/// The cookie of the flows OVS learns on switch `vni`.
pub fn learned_cookie(vni: u32) -> u64 {
    COOKIE_LEARNED | u64::from(vni)
}

/// Default idle timeout (seconds) of a MAC learned behind a flood VTEP (weftd's
/// `--vtep-learn-idle-timeout`): a legacy bridge's usual ageing time.
pub const LEARN_IDLE_TIMEOUT_DEFAULT: u16 = 300;

static LEARN_IDLE_TIMEOUT: std::sync::atomic::AtomicU16 =
    std::sync::atomic::AtomicU16::new(LEARN_IDLE_TIMEOUT_DEFAULT);

/// Sets the idle timeout the compiler writes into its `learn` actions. Process-wide: weftd
/// sets it once from its flag before compiling anything.
pub fn set_learn_idle_timeout(secs: u16) {
    LEARN_IDLE_TIMEOUT.store(secs, std::sync::atomic::Ordering::Relaxed);
}

/// The idle timeout of learned MACs, in seconds.
pub fn learn_idle_timeout() -> u16 {
    LEARN_IDLE_TIMEOUT.load(std::sync::atomic::Ordering::Relaxed)
}

/// The cookie of flows that serve logical object `id` (a switch or port): Weft's tag plus
/// the low 48 bits of the object's uuid.
pub fn cookie_for(id: &Uuid) -> u64 {
    COOKIE_WEFT | (id.as_u128() as u64 & !COOKIE_MASK)
}

/// Table numbers of the pipeline (docs/pipeline.md).
pub mod tables {
    pub const CLASSIFY: u8 = 0;
    pub const PORT_SECURITY: u8 = 10;
    pub const EGRESS_ACL: u8 = 20;
    pub const EGRESS_ACL_CT: u8 = 21;
    pub const ARP_RESPONDER: u8 = 25;
    /// Routing: longest prefix match, TTL, MAC rewrite (and the last step of ND replies).
    pub const L3_LOOKUP: u8 = 26;
    /// Routing: a destination IP on the egress switch -> its port's MAC, from the model.
    pub const NEIGHBOR: u8 = 27;
    pub const L2_LOOKUP: u8 = 30;
    /// MACs learned behind flood VTEPs (flows added by OVS's `learn`, not by Weft), and
    /// unknown unicast replicated to a switch's flood VTEPs.
    pub const LEARNED: u8 = 33;
    pub const INGRESS_ACL: u8 = 40;
    pub const INGRESS_ACL_CT: u8 = 41;
    pub const OUTPUT: u8 = 50;
}

/// The `metadata` of a packet while router `key` routes it (switches use their VNI,
/// always below 2^24, so the two never meet).
pub fn router_metadata(key: u32) -> u64 {
    crate::model::ROUTER_METADATA_BASE | u64::from(key)
}

/// The flood group of a switch (local ports + one bucket per remote node).
pub fn flood_group(vni: u32) -> u32 {
    vni << 1
}

/// The local-only group of a switch (used for traffic that came from a tunnel).
pub fn local_group(vni: u32) -> u32 {
    (vni << 1) | 1
}
