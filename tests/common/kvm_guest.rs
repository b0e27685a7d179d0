//! A real KVM guest whose page tables and dirty log go through `MemTable`
//! (issue 9, part 4): the one implementation shared by
//! `examples/kvm_migrate.rs` and `tests/kvm.rs`, each of which includes this
//! file with `#[path = "..."] mod kvm_guest;`.
//!
//! What [`run`] does, in order:
//!
//! 1. Creates a VM whose guest memory is several memslots at distant
//!    guest-physical bases ([`Config::slots`]), anonymous `MAP_NORESERVE`
//!    memory from `vm-memory` (untouched memory costs nothing), every slot
//!    with `KVM_MEM_LOG_DIRTY_PAGES`; a second set of the same regions is
//!    the migration's destination.
//! 2. Lays out the guest's mappings in a `MemTable<Mapping>` keyed by
//!    guest-virtual address: an identity map of slot 0 (4 KiB and 2 MiB
//!    entries) for the code, the lists and the page tables, and data
//!    mappings of 1 GiB, 2 MiB and 4 KiB at scattered virtual addresses onto
//!    frames picked at random in the data slots (a `MemTable<()>` of the
//!    frames in use keeps them disjoint). Each data mapping stores a tag.
//! 3. Walks the table with `iter()` and emits real x86-64 PML4/PDPT/PD/PT
//!    entries into slot 0 (accessed and dirty bits preset, so that the
//!    processor's page walk never writes to guest memory), writes the tag of
//!    each mapping at the start and at the last `u64` of its frame, and
//!    starts one vCPU directly in 64-bit long mode (`KVM_SET_SREGS`).
//!    Where KVM's supported CPUID lacks `pdpe1gb` (1 GiB guest pages; a
//!    shadow-paging KVM may not offer them, and a PDPTE with PS then
//!    faults), each 1 GiB entry is split in the table into 512 x 2 MiB
//!    (`split_with`) before emitting; [`check_page_tables`] covers 1 GiB
//!    leaves without KVM by walking the emitted tables in software.
//! 4. The guest (hand-assembled, [`GUEST_CODE`]) reads the `u64` at every
//!    probe address through its own page tables into a results area and
//!    signals with `out 0x10`; the host compares each value with what
//!    `get_key_value` on the mapping table says is there.
//! 5. Pre-copy migration in rounds: for round `k` the host passes a seed
//!    and two counts in registers; the guest writes scattered `u64`s
//!    (xorshift64 picks a mapping, a page and an offset) and whole 2 MiB
//!    runs (512 pages), then signals with `out 0x11`. The host harvests
//!    `KVM_GET_DIRTY_LOG` of every slot into a `MemTable<u32>` (page ->
//!    last round written), compares the round's dirty set with the set its
//!    own copy of the generator predicts, and copies exactly the round's
//!    dirty pages to the destination. When a round dirties no more than
//!    [`Config::converge_pages`] pages (or at [`Config::max_rounds`]) the
//!    guest stays stopped and that last set is the stop-and-copy.
//! 6. Verifies that the destination equals the source byte for byte over
//!    every slot, and that the dirty table equals the prediction.
//!
//! Round 0 is the setup: the host's own writes into guest memory (page
//! tables, tags, lists, code) are not in KVM's log, so the host records
//! them itself (as a VMM does for its device writes) and sends them with
//! the guest's round-0 writes (the results area). Pages never written
//! by anyone are zero at both ends, which the final compare checks.
//!
//! The dirty log is harvested one of two ways ([`Config::dirty_log`]); the
//! two are exclusive per VM, so the example runs the same guest (same seed,
//! same layout, same writes) once in each mode:
//!
//! - [`DirtyLog::Bitmap`]: `KVM_GET_DIRTY_LOG` of every slot per round.
//! - [`DirtyLog::Ring`]: the per-vCPU dirty ring (`KVM_CAP_DIRTY_LOG_RING`),
//!   enabled on the VM before its vCPU is made and `mmap`ped from the vCPU
//!   fd at `KVM_DIRTY_LOG_PAGE_OFFSET`. Per round the host walks the ring
//!   from its fetch index while an entry's flags say DIRTY (an Acquire load),
//!   turns `(slot, offset)` into a guest-physical page, marks the entry
//!   RESET (a Release store) and calls `KVM_RESET_DIRTY_RINGS`. A full ring
//!   in the middle of a round (`KVM_EXIT_DIRTY_RING_FULL`) is harvested the
//!   same way into the round's entries and the vCPU resumed. The ring may
//!   name a page more than once; the round's set is deduplicated before it
//!   is compared with the prediction. A harvest that finds the whole ring
//!   dirty (the kernel wrote past its soft limit before the full exit, so
//!   entries may have been overwritten) is [`GuestError::RingOverflow`]:
//!   size the ring so that a round fits. Where the kernel does not offer the
//!   ring, or will not enable it, [`run`] returns
//!   [`GuestError::RingUnavailable`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hint::black_box;
use std::time::{Duration, Instant};

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

use kvm_bindings::{
    KVM_CAP_DIRTY_LOG_RING, KVM_CAP_DIRTY_LOG_RING_ACQ_REL, KVM_DIRTY_LOG_PAGE_OFFSET,
    KVM_EXIT_DIRTY_RING_FULL, KVM_MAX_CPUID_ENTRIES, KVM_MEM_LOG_DIRTY_PAGES, kvm_dirty_gfn, kvm_enable_cap,
    kvm_segment, kvm_userspace_memory_region,
};
use kvm_ioctls::{Cap, Kvm, VcpuExit, VcpuFd, VmFd};
use mem_table::ops::{Children, PageOps};
use mem_table::{Level, MemTable, Page};
use vm_memory::{
    Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, MemoryRegionAddress,
};

/// The base page: KVM's dirty log has one bit per 4 KiB page whatever the
/// guest's page sizes.
pub const PAGE: u64 = 4096;
const MIB2: u64 = 2 << 20;
const GIB: u64 = 1 << 30;

/// Guest-physical (and, identity-mapped, guest-virtual) layout of slot 0.
const CODE_GPA: u64 = 0x1000;
const CTRL_GPA: u64 = 0x2000;
const GDT_GPA: u64 = 0x3000;
const LISTS_GPA: u64 = 0x1_0000;
const LISTS_END: u64 = 0x10_0000;
const PT_GPA: u64 = 0x10_0000;
/// Slot 0 is exactly this: 4 KiB identity pages below 2 MiB, one 2 MiB
/// identity page above.
pub const SYSTEM_SLOT: (u64, u64) = (0, 4 << 20);

/// Guest-virtual bases of the data mappings, each in its own PML4 entry
/// or PDPT region so that the walk builds several tables at each level.
const VA_1G: u64 = 0x0080_0000_0000;
const VA_2M: u64 = 0x00c0_0000_0000;
const VA_4K: u64 = 0x0100_0000_0000;
const VA_RUN: u64 = 0x0180_0000_0000;
/// An address no mapping covers (for the unmapped-probe fault).
const VA_UNMAPPED: u64 = 0x0070_0000_0000;

/// The ports the guest signals on.
pub const PORT_PROBED: u16 = 0x10;
pub const PORT_ROUND: u16 = 0x11;

// x86 page-table entry bits.
const PTE_P: u64 = 1;
const PTE_RW: u64 = 1 << 1;
const PTE_A: u64 = 1 << 5;
const PTE_D: u64 = 1 << 6;
const PTE_PS: u64 = 1 << 7;
const PTE_ADDR: u64 = 0x000f_ffff_ffff_f000;

/// The guest program, assembled once with GNU `as --64` (Intel syntax) and
/// embedded as bytes; `objdump -d` of it is in the comments.
///
/// On entry: `rsi` = control block (identity-mapped): `[rsi+0]` probe list,
/// `[rsi+8]` probe count, `[rsi+16]` results, `[rsi+24]` mapping list of
/// `(va, pages)` pairs, `[rsi+32]` its length, `[rsi+40]` list of 2 MiB
/// run addresses, `[rsi+48]` its length. Per round the host sets `rdi` =
/// seed (0 = stop: `hlt`), `r12` = scattered writes, `r13` = 2 MiB runs.
#[rustfmt::skip]
pub const GUEST_CODE: &[u8] = &[
    // start: probe every address in the list, in order
    0x48, 0x8b, 0x4e, 0x08,                   // 0x00: mov  rcx, [rsi+0x8]      ; probe count
    0x48, 0x8b, 0x1e,                         // 0x04: mov  rbx, [rsi]          ; probe list
    0x48, 0x8b, 0x56, 0x10,                   // 0x07: mov  rdx, [rsi+0x10]     ; results
    // probe:
    0x48, 0x85, 0xc9,                         // 0x0b: test rcx, rcx
    0x74, 0x16,                               // 0x0e: je   probed (0x26)
    0x48, 0x8b, 0x03,                         // 0x10: mov  rax, [rbx]          ; address
    0x48, 0x8b, 0x00,                         // 0x13: mov  rax, [rax]          ; through the guest's page tables
    0x48, 0x89, 0x02,                         // 0x16: mov  [rdx], rax
    0x48, 0x83, 0xc3, 0x08,                   // 0x19: add  rbx, 8
    0x48, 0x83, 0xc2, 0x08,                   // 0x1d: add  rdx, 8
    0x48, 0xff, 0xc9,                         // 0x21: dec  rcx
    0xeb, 0xe5,                               // 0x24: jmp  probe (0x0b)
    // probed:
    0xe6, 0x10,                               // 0x26: out  0x10, al
    // round:
    0x48, 0x85, 0xff,                         // 0x28: test rdi, rdi
    0x0f, 0x84, 0xb2, 0x00, 0x00, 0x00,       // 0x2b: je   done (0xe3)
    0x4d, 0x89, 0xe0,                         // 0x31: mov  r8, r12             ; scattered writes
    // scatter:
    0x4d, 0x85, 0xc0,                         // 0x34: test r8, r8
    0x74, 0x55,                               // 0x37: je   runs (0x8e)
    0x48, 0x89, 0xf8,                         // 0x39: mov  rax, rdi            ; xorshift64: x ^= x << 13
    0x48, 0xc1, 0xe0, 0x0d,                   // 0x3c: shl  rax, 13
    0x48, 0x31, 0xc7,                         // 0x40: xor  rdi, rax
    0x48, 0x89, 0xf8,                         // 0x43: mov  rax, rdi            ; x ^= x >> 7
    0x48, 0xc1, 0xe8, 0x07,                   // 0x46: shr  rax, 7
    0x48, 0x31, 0xc7,                         // 0x4a: xor  rdi, rax
    0x48, 0x89, 0xf8,                         // 0x4d: mov  rax, rdi            ; x ^= x << 17
    0x48, 0xc1, 0xe0, 0x11,                   // 0x50: shl  rax, 17
    0x48, 0x31, 0xc7,                         // 0x54: xor  rdi, rax
    0x89, 0xf8,                               // 0x57: mov  eax, edi            ; low 32 bits
    0x31, 0xd2,                               // 0x59: xor  edx, edx
    0x48, 0xf7, 0x76, 0x20,                   // 0x5b: div  qword [rsi+0x20]    ; rdx = mapping index
    0x48, 0xc1, 0xe2, 0x04,                   // 0x5f: shl  rdx, 4
    0x48, 0x03, 0x56, 0x18,                   // 0x63: add  rdx, [rsi+0x18]
    0x49, 0x89, 0xd1,                         // 0x67: mov  r9, rdx             ; &(va, pages)
    0x48, 0x89, 0xf8,                         // 0x6a: mov  rax, rdi
    0x48, 0xc1, 0xe8, 0x20,                   // 0x6d: shr  rax, 32             ; high 32 bits
    0x31, 0xd2,                               // 0x71: xor  edx, edx
    0x49, 0xf7, 0x71, 0x08,                   // 0x73: div  qword [r9+0x8]      ; rdx = page in mapping
    0x48, 0xc1, 0xe2, 0x0c,                   // 0x77: shl  rdx, 12
    0x49, 0x03, 0x11,                         // 0x7b: add  rdx, [r9]           ; + va
    0x89, 0xf8,                               // 0x7e: mov  eax, edi
    0x25, 0xf8, 0x0f, 0x00, 0x00,             // 0x80: and  eax, 0xff8          ; offset in page
    0x48, 0x89, 0x3c, 0x02,                   // 0x85: mov  [rdx+rax], rdi
    0x49, 0xff, 0xc8,                         // 0x89: dec  r8
    0xeb, 0xa6,                               // 0x8c: jmp  scatter (0x34)
    // runs:
    0x4d, 0x89, 0xe8,                         // 0x8e: mov  r8, r13             ; 2 MiB runs
    // run_loop:
    0x4d, 0x85, 0xc0,                         // 0x91: test r8, r8
    0x74, 0x46,                               // 0x94: je   round_end (0xdc)
    0x48, 0x89, 0xf8,                         // 0x96: mov  rax, rdi            ; xorshift64 as above
    0x48, 0xc1, 0xe0, 0x0d,                   // 0x99: shl  rax, 13
    0x48, 0x31, 0xc7,                         // 0x9d: xor  rdi, rax
    0x48, 0x89, 0xf8,                         // 0xa0: mov  rax, rdi
    0x48, 0xc1, 0xe8, 0x07,                   // 0xa3: shr  rax, 7
    0x48, 0x31, 0xc7,                         // 0xa7: xor  rdi, rax
    0x48, 0x89, 0xf8,                         // 0xaa: mov  rax, rdi
    0x48, 0xc1, 0xe0, 0x11,                   // 0xad: shl  rax, 17
    0x48, 0x31, 0xc7,                         // 0xb1: xor  rdi, rax
    0x89, 0xf8,                               // 0xb4: mov  eax, edi
    0x31, 0xd2,                               // 0xb6: xor  edx, edx
    0x48, 0xf7, 0x76, 0x30,                   // 0xb8: div  qword [rsi+0x30]    ; rdx = run index
    0x48, 0x8b, 0x46, 0x28,                   // 0xbc: mov  rax, [rsi+0x28]
    0x48, 0x8b, 0x14, 0xd0,                   // 0xc0: mov  rdx, [rax+rdx*8]    ; run va
    0xb9, 0x00, 0x02, 0x00, 0x00,             // 0xc4: mov  ecx, 512
    // fill: one u64 at the start of each of the run's 512 pages
    0x48, 0x89, 0x3a,                         // 0xc9: mov  [rdx], rdi
    0x48, 0x81, 0xc2, 0x00, 0x10, 0x00, 0x00, // 0xcc: add  rdx, 0x1000
    0xff, 0xc9,                               // 0xd3: dec  ecx
    0x75, 0xf2,                               // 0xd5: jne  fill (0xc9)
    0x49, 0xff, 0xc8,                         // 0xd7: dec  r8
    0xeb, 0xb5,                               // 0xda: jmp  run_loop (0x91)
    // round_end:
    0xe6, 0x11,                               // 0xdc: out  0x11, al
    0xe9, 0x45, 0xff, 0xff, 0xff,             // 0xde: jmp  round (0x28)
    // done:
    0xf4,                                     // 0xe3: hlt
    0xeb, 0xfd,                               // 0xe4: jmp  done (0xe3)
];
/// Offset of the port byte of `out 0x11, al` in [`GUEST_CODE`].
const ROUND_PORT_BYTE: usize = 0xdd;

/// One step of the guest's generator (xorshift64, 13/7/17), the host's
/// copy of the three shift-xor pairs in [`GUEST_CODE`].
pub fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// A well-mixed 64-bit value from `x` (splitmix64's finaliser), for seeds
/// and tags.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The `u64` the host writes at byte `offset` of a mapping whose tag is
/// `tag` (the tag itself at offset 0).
pub fn tag_at(tag: u64, offset: u64) -> u64 {
    tag ^ offset.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// What a mapping is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Identity map of slot 0 (code, lists, page tables): not probed.
    System,
    /// A data mapping: probed, and written by the rounds.
    Data,
}

/// The value of the mapping table: where a guest-virtual page goes, and
/// the tag the host wrote there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub pa: u64,
    pub tag: u64,
    pub kind: Kind,
}

/// A deliberate defect, to show that the checks catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// The tag at the start of the first 2 MiB mapping is written wrong.
    CorruptTag,
    /// The PTE of the first 4 KiB mapping points at the second one's frame.
    WrongPte,
    /// The PS bit of the first 2 MiB mapping's PDE is cleared.
    ClearPs,
    /// One dirty page of the stop-and-copy round is dropped from the harvest
    /// (its bit cleared in the bitmap, or its ring entry dropped).
    MissDirty,
    /// The probe list gets an address no mapping covers (a guest page fault).
    UnmappedProbe,
    /// The guest's end-of-round `out` goes to port 0x12.
    BadPort,
}

/// The shape of one run.
#[derive(Clone, Debug)]
pub struct Config {
    /// `(guest-physical base, size)` of each memslot; the first must be
    /// [`SYSTEM_SLOT`]. Bases are multiples of 256 KiB (64 pages), sizes of
    /// 2 MiB.
    pub slots: Vec<(u64, u64)>,
    /// 1 GiB data mappings (each needs a free 1 GiB-aligned frame).
    pub maps_1g: usize,
    /// 2 MiB data mappings.
    pub maps_2m: usize,
    /// Scattered 4 KiB data mappings.
    pub maps_4k: usize,
    /// 512 more 4 KiB mappings, virtually contiguous (one 2 MiB run of
    /// small pages), onto scattered frames.
    pub run_4k: bool,
    /// 2 MiB chunks of each 1 GiB mapping offered as runs.
    pub runs_per_1g: usize,
    pub seed: u64,
    /// Scattered writes and 2 MiB runs in round 1; each later round halves
    /// both.
    pub scatter: u64,
    pub runs: u64,
    pub max_rounds: u32,
    /// A round that dirties at most this many pages ends the live phase.
    pub converge_pages: usize,
    pub fault: Fault,
    /// How the dirty log is harvested.
    pub dirty_log: DirtyLog,
}

/// How [`run`] harvests KVM's dirty log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirtyLog {
    /// `KVM_GET_DIRTY_LOG`: one bitmap per memslot per round.
    Bitmap,
    /// The vCPU's dirty ring of `entries` entries (a power of two; cut down
    /// to the kernel's maximum where it offers less). A round that dirties
    /// more than the ring holds is harvested at each full exit.
    Ring { entries: u32 },
}

/// `cfg` in dirty-ring mode, with a ring of `entries` entries.
pub fn with_ring(cfg: &Config, entries: u32) -> Config {
    Config { dirty_log: DirtyLog::Ring { entries }, ..cfg.clone() }
}

/// The example's shape: four memslots spread over 21 GiB of guest-physical
/// address space.
pub fn example_config() -> Config {
    Config {
        slots: vec![SYSTEM_SLOT, (4 * GIB, 128 << 20), (8 * GIB, GIB), (21 * GIB, 64 << 20)],
        maps_1g: 1,
        maps_2m: 48,
        maps_4k: 3000,
        run_4k: true,
        runs_per_1g: 16,
        seed: 0x5eed_0009_0004,
        scatter: 8192,
        runs: 16,
        max_rounds: 12,
        converge_pages: 64,
        fault: Fault::None,
        dirty_log: DirtyLog::Bitmap,
    }
}

/// The test's shape: three memslots (the 1 GiB one sparse), fewer rounds.
pub fn test_config() -> Config {
    Config {
        slots: vec![SYSTEM_SLOT, (4 * GIB, 16 << 20), (8 * GIB, GIB)],
        maps_1g: 1,
        maps_2m: 4,
        maps_4k: 300,
        run_4k: true,
        runs_per_1g: 4,
        seed: 0x7e57_0009_0004,
        scatter: 1000,
        runs: 4,
        max_rounds: 6,
        converge_pages: 64,
        fault: Fault::None,
        dirty_log: DirtyLog::Bitmap,
    }
}

/// Everything that can go wrong, named.
#[derive(Debug)]
pub enum GuestError {
    /// KVM cannot be used here (no `/dev/kvm`, no permission, or it cannot
    /// create a VM or vCPU): the test skips on this one.
    Unavailable(String),
    /// A KVM ioctl failed.
    Kvm { what: &'static str, err: kvm_ioctls::Error },
    /// Guest memory could not be mapped or accessed.
    Memory(String),
    /// The configuration does not fit the layout.
    Config(String),
    /// The guest shut down (triple fault: any exception, such as a page
    /// fault, since it has no IDT).
    /// `cr2` is the last page-fault address.
    Shutdown { phase: &'static str, rip: u64, cr2: u64 },
    /// The guest touched an address no memslot backs.
    Mmio { phase: &'static str, addr: u64, write: bool },
    /// The guest did `out` to a port other than the one expected.
    UnexpectedPort { phase: &'static str, port: u16, expected: u16 },
    /// Any other exit.
    UnexpectedExit { phase: &'static str, exit: String },
    /// Dirty-ring mode, but the kernel does not offer the ring
    /// (`KVM_CHECK_EXTENSION` says 0) or will not enable it
    /// (`KVM_ENABLE_CAP` fails): the ring part is skipped on this one.
    RingUnavailable(String),
    /// A dirty-ring entry names a page outside every memslot.
    BadRingEntry { slot: u32, offset: u64 },
    /// A harvest found all of the ring's entries dirty: the kernel may have
    /// written past the ring before the full exit, losing entries.
    RingOverflow { entries: u32 },
}

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuestError::Unavailable(why) => write!(f, "KVM unavailable: {why}"),
            GuestError::Kvm { what, err } => write!(f, "KVM ioctl {what} failed: {err}"),
            GuestError::Memory(why) => write!(f, "guest memory: {why}"),
            GuestError::Config(why) => write!(f, "bad configuration: {why}"),
            GuestError::Shutdown { phase, rip, cr2 } => {
                write!(
                    f,
                    "guest shut down (triple fault) during {phase}, rip {rip:#x}, last page fault at {cr2:#x}"
                )
            }
            GuestError::Mmio { phase, addr, write } => write!(
                f,
                "guest {} unbacked guest-physical address {addr:#x} (MMIO exit) during {phase}",
                if *write { "wrote" } else { "read" }
            ),
            GuestError::UnexpectedPort { phase, port, expected } => {
                write!(f, "guest wrote to I/O port {port:#x} during {phase}, expected {expected:#x}")
            }
            GuestError::UnexpectedExit { phase, exit } => {
                write!(f, "unexpected vCPU exit during {phase}: {exit}")
            }
            GuestError::RingUnavailable(why) => write!(f, "dirty ring not offered by this kernel: {why}"),
            GuestError::RingOverflow { entries } => write!(
                f,
                "dirty ring of {entries} entries found full at a harvest (KVM_EXIT_DIRTY_RING_FULL came too late): \
                 entries may be lost; use a ring larger than a round's dirty pages"
            ),
            GuestError::BadRingEntry { slot, offset } => write!(
                f,
                "dirty ring entry names slot {slot:#x}, page offset {offset:#x}: not a page of any memslot"
            ),
        }
    }
}

impl std::error::Error for GuestError {}

fn kvm_err(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> GuestError {
    move |err| GuestError::Kvm { what, err }
}

fn table_err<T>(what: &str) -> impl FnOnce(mem_table::Error<T>) -> GuestError + '_ {
    move |e| GuestError::Config(format!("{what}: {e}"))
}

/// A probe whose value was not what the mapping table says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeMismatch {
    pub va: u64,
    pub got: u64,
    /// `None` where no data mapping covers `va`.
    pub expected: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Host setup and the guest's probe pass; sent in full.
    Setup,
    /// A round the guest ran while the migration went on.
    Live,
    /// The last round: the guest stays stopped and the rest is sent.
    StopAndCopy,
}

/// One round of the migration.
#[derive(Clone, Debug)]
pub struct RoundStat {
    pub round: u32,
    pub phase: Phase,
    /// Scattered writes and runs the guest was told to do.
    pub scatter: u64,
    pub runs: u64,
    /// Pages KVM reported dirty this round, over all slots.
    pub dirty: usize,
    /// Pages the host predicted the guest would write this round.
    pub expected: usize,
    /// Predicted but not reported (first few), and how many in all.
    pub missing: Vec<u64>,
    pub missing_count: usize,
    /// Reported but not predicted (first few), and how many in all.
    pub extra: Vec<u64>,
    pub extra_count: usize,
    /// Pages copied to the destination after this round.
    pub sent: usize,
    /// Of `sent`, pages in a guest 2 MiB or 1 GiB mapping.
    pub sent_in_large: usize,
    /// Time of the `KVM_GET_DIRTY_LOG` calls of this round; in ring mode,
    /// of the ring walks and `KVM_RESET_DIRTY_RINGS` calls (full exits of
    /// the round included).
    pub harvest_ioctl: Duration,
    /// Ring mode: entries harvested this round (duplicates included), and
    /// `KVM_EXIT_DIRTY_RING_FULL` exits during it.
    pub ring_entries: usize,
    pub ring_full_exits: u32,
}

/// The harvest of one round: one `Vec<u64>` bitmap per slot (bitmap
/// mode), or the ring's `(slot, page offset)` entries in the order read
/// (ring mode; the other is empty).
#[derive(Clone, Debug)]
pub struct Harvest {
    pub round: u32,
    pub bitmaps: Vec<Vec<u64>>,
    pub ring: Vec<(u32, u64)>,
}

/// What a run found.
#[derive(Debug)]
pub struct Report {
    pub slots: Vec<(u64, u64)>,
    pub dirty_ring_offered: bool,
    /// What `KVM_CHECK_EXTENSION(KVM_CAP_DIRTY_LOG_RING)` returned: the
    /// largest ring in bytes (0: not offered).
    pub dirty_ring_max_bytes: i32,
    /// How this run harvested, and in ring mode the ring's size in bytes.
    pub dirty_log: DirtyLog,
    pub ring_bytes: Option<u64>,
    /// Whether KVM offers the guest 1 GiB pages (CPUID pdpe1gb); where it
    /// does not, each 1 GiB mapping was split into 512 x 2 MiB.
    pub gib_pages_offered: bool,
    pub split_1g: usize,
    /// Data mappings by level (index 0 = 4 KiB, 1 = 2 MiB, 2 = 1 GiB), and
    /// all mappings (identity ones too).
    pub data_maps: [usize; 3],
    pub all_maps: usize,
    pub page_table_pages: usize,
    pub probes: usize,
    pub probe_mismatches: Vec<ProbeMismatch>,
    /// Probes whose software walk of the emitted tables disagrees with the
    /// table (a check of the emitter apart from the hardware).
    pub soft_walk_mismatches: usize,
    /// The virtual address a [`Fault`] was planted at, if any.
    pub fault_va: Option<u64>,
    pub rounds: Vec<RoundStat>,
    pub converged: bool,
    /// Pages KVM reported after the guest was stopped (it only halts).
    pub dirty_after_stop: usize,
    /// Pages of the destination that differ from the source, and the first.
    pub dest_diff_pages: usize,
    pub first_dest_diff: Option<u64>,
    /// Bytes compared source against destination.
    pub compared_bytes: u64,
    /// The dirty table (page -> last round) against the prediction.
    pub table_entries: usize,
    pub table_mismatches: usize,
    pub first_table_mismatch: Option<(u64, Option<u32>, Option<u32>)>,
    /// Every harvest's raw bitmaps, for [`harvest_bench`].
    pub harvests: Vec<Harvest>,
}

impl Report {
    pub fn dirty_rounds_match(&self) -> bool {
        self.rounds.iter().all(|r| r.missing_count == 0 && r.extra_count == 0)
    }

    /// Every check passed.
    pub fn ok(&self) -> bool {
        self.probe_mismatches.is_empty()
            && self.soft_walk_mismatches == 0
            && self.dirty_rounds_match()
            && self.dirty_after_stop == 0
            && self.dest_diff_pages == 0
            && self.table_mismatches == 0
    }

    pub fn pages_sent(&self) -> usize {
        self.rounds.iter().map(|r| r.sent).sum()
    }

    /// Ring mode: entries harvested, and full exits, over the whole run.
    pub fn ring_entries(&self) -> usize {
        self.rounds.iter().map(|r| r.ring_entries).sum()
    }

    pub fn ring_full_exits(&self) -> u32 {
        self.rounds.iter().map(|r| r.ring_full_exits).sum()
    }
}

/// The source or destination memory: the `vm-memory` regions and a host
/// pointer to each (for page copies and the final compare).
struct Memory {
    mem: GuestMemoryMmap,
    regions: Vec<(u64, u64, *mut u8)>,
}

impl Memory {
    fn new(slots: &[(u64, u64)]) -> Result<Memory, GuestError> {
        let ranges: Vec<(GuestAddress, usize)> = slots
            .iter()
            .map(|&(base, size)| {
                Ok((
                    GuestAddress(base),
                    usize::try_from(size).map_err(|e| GuestError::Config(e.to_string()))?,
                ))
            })
            .collect::<Result<_, GuestError>>()?;
        let mem = GuestMemoryMmap::<()>::from_ranges(&ranges)
            .map_err(|e| GuestError::Memory(format!("mmap: {e}")))?;
        let mut regions = Vec::new();
        for r in mem.iter() {
            let host = r
                .get_host_address(MemoryRegionAddress(0))
                .map_err(|e| GuestError::Memory(format!("host address: {e}")))?;
            regions.push((r.start_addr().0, r.len(), host));
        }
        Ok(Memory { mem, regions })
    }

    fn read_u64(&self, gpa: u64) -> Result<u64, GuestError> {
        self.mem.read_obj(GuestAddress(gpa)).map_err(|e| GuestError::Memory(format!("read {gpa:#x}: {e}")))
    }

    fn write_u64(&self, gpa: u64, v: u64) -> Result<(), GuestError> {
        self.mem
            .write_obj(v, GuestAddress(gpa))
            .map_err(|e| GuestError::Memory(format!("write {gpa:#x}: {e}")))
    }

    fn write_bytes(&self, gpa: u64, b: &[u8]) -> Result<(), GuestError> {
        self.mem
            .write_slice(b, GuestAddress(gpa))
            .map_err(|e| GuestError::Memory(format!("write {gpa:#x}: {e}")))
    }

    /// The host pointer of `len` bytes at `gpa`, all in one region.
    fn host(&self, gpa: u64, len: u64) -> Result<*mut u8, GuestError> {
        for &(base, size, host) in &self.regions {
            if gpa >= base && gpa.saturating_add(len) <= base + size {
                return Ok(host.wrapping_add((gpa - base) as usize));
            }
        }
        Err(GuestError::Memory(format!("{len} bytes at {gpa:#x} are not in one memslot")))
    }
}

/// Copy the page at `gpa` from `src` to `dst` (same layout).
fn copy_page(src: &Memory, dst: &Memory, gpa: u64) -> Result<(), GuestError> {
    let s = src.host(gpa, PAGE)?;
    let d = dst.host(gpa, PAGE)?;
    // SAFETY: both pointers are to PAGE bytes inside live mappings owned by
    // `src` and `dst` (checked by `host`); the two mappings are distinct, so
    // the ranges do not overlap; the vCPU is not running (this thread is the
    // only one that runs it, and it is here), so nothing else writes them.
    unsafe { std::ptr::copy_nonoverlapping(s, d, PAGE as usize) };
    Ok(())
}

/// Pages whose bytes differ between `src` and `dst`, and the first.
fn compare(src: &Memory, dst: &Memory) -> Result<(usize, Option<u64>, u64), GuestError> {
    let mut diff = 0;
    let mut first = None;
    let mut bytes = 0;
    for &(base, size, s) in &src.regions {
        let d = dst.host(base, size)?;
        // SAFETY: `s` and `d` are the starts of live mappings of `size`
        // bytes (one region of `src`, the same range of `dst`); the vCPU is
        // not running, so nothing writes them while the slices live, and
        // anonymous memory is always initialised (zero where untouched).
        let (a, b) = unsafe {
            (std::slice::from_raw_parts(s, size as usize), std::slice::from_raw_parts(d, size as usize))
        };
        // Whole slot first (one memcmp), page by page only where it differs.
        if a != b {
            for (i, (pa, pb)) in a.chunks(PAGE as usize).zip(b.chunks(PAGE as usize)).enumerate() {
                if pa != pb {
                    diff += 1;
                    first.get_or_insert(base + i as u64 * PAGE);
                }
            }
        }
        bytes += size;
    }
    Ok((diff, first, bytes))
}

/// Host writes into guest memory, recorded per page: KVM does not log
/// them, so the host's own log says which pages setup touched.
struct Writer<'a> {
    mem: &'a Memory,
    pages: BTreeSet<u64>,
}

impl Writer<'_> {
    fn u64(&mut self, gpa: u64, v: u64) -> Result<(), GuestError> {
        self.mem.write_u64(gpa, v)?;
        self.pages.insert(gpa & !(PAGE - 1));
        Ok(())
    }

    fn bytes(&mut self, gpa: u64, b: &[u8]) -> Result<(), GuestError> {
        self.mem.write_bytes(gpa, b)?;
        let end = gpa + b.len() as u64;
        let mut p = gpa & !(PAGE - 1);
        while p < end {
            self.pages.insert(p);
            p += PAGE;
        }
        Ok(())
    }
}

/// Physical frames for the data mappings: random aligned frames in the data
/// slots, kept disjoint by a `MemTable<()>` of the frames in use.
struct Frames<'a> {
    slots: &'a [(u64, u64)],
    used: MemTable<()>,
    rng: u64,
}

impl Frames<'_> {
    fn alloc(&mut self, level: Level) -> Result<u64, GuestError> {
        let size =
            MemTable::<()>::page_size(level).ok_or_else(|| GuestError::Config("no such level".into()))?;
        let candidates: Vec<(u64, u64)> = self.slots[1..]
            .iter()
            .filter_map(|&(base, len)| {
                let first = base.next_multiple_of(size);
                let n = (base + len).saturating_sub(first) / size;
                (n > 0).then_some((first, n))
            })
            .collect();
        if candidates.is_empty() {
            return Err(GuestError::Config(format!("no data slot holds an aligned {size:#x}-byte frame")));
        }
        for _ in 0..100_000 {
            self.rng = xorshift(self.rng);
            let (first, n) = candidates[(self.rng % candidates.len() as u64) as usize];
            let pa = first + ((self.rng >> 20) % n) * size;
            if self.used.get(pa).is_none() && self.used.range(pa..pa + size).next().is_none() {
                self.used.insert_at(pa, level, ()).map_err(table_err("frame table"))?;
                return Ok(pa);
            }
        }
        Err(GuestError::Config(format!("data slots too full for another {size:#x}-byte frame")))
    }
}

/// The guest's mappings, and the lists the guest reads.
struct Layout {
    maps: MemTable<Mapping>,
    /// `(va, pages)` of each data mapping, in address order.
    data: Vec<(u64, u64)>,
    /// 2 MiB-aligned, 2 MiB virtual runs.
    runs: Vec<u64>,
    /// Addresses the guest reads.
    probes: Vec<u64>,
    /// 1 GiB mappings split into 2 MiB ones (where KVM has no 1 GiB pages).
    split_1g: usize,
    /// The data frames in use, each entry the frame's size.
    frames: MemTable<()>,
}

/// Splits a 1 GiB mapping into 2 MiB ones: each gets its part of the frame
/// and a tag of its own.
struct SplitMapping;

impl PageOps<Mapping> for SplitMapping {
    fn split(&mut self, page: Page, m: &Mapping, sub: Page) -> Mapping {
        let off = sub.addr() - page.addr();
        Mapping { pa: m.pa + off, tag: mix(m.tag ^ off), kind: m.kind }
    }

    fn merge(&mut self, _: Page, _: Children<'_, '_, Mapping>) -> Option<Mapping> {
        None
    }
}

fn build_layout(cfg: &Config, gib_pages: bool) -> Result<Layout, GuestError> {
    let mut maps: MemTable<Mapping> = MemTable::new();
    let sys = |pa| Mapping { pa, tag: 0, kind: Kind::System };
    // Identity map of slot 0: 4 KiB pages (page 0 left out) and one 2 MiB page.
    for pa in (PAGE..MIB2).step_by(PAGE as usize) {
        maps.insert(pa, sys(pa)).map_err(table_err("identity map"))?;
    }
    maps.insert_at(MIB2, Level::new(1), sys(MIB2)).map_err(table_err("identity map"))?;

    let mut frames = Frames { slots: &cfg.slots, used: MemTable::new(), rng: mix(cfg.seed) | 1 };
    let mut rng = mix(cfg.seed ^ 0xa11c) | 1;
    let data = |maps: &mut MemTable<Mapping>, va: u64, level: Level, frames: &mut Frames| {
        let pa = frames.alloc(level)?;
        let tag = mix(va ^ pa.rotate_left(17) ^ cfg.seed);
        maps.insert_at(va, level, Mapping { pa, tag, kind: Kind::Data })
            .map_err(table_err("data mapping"))?;
        Ok::<(), GuestError>(())
    };
    let mut split_1g = 0;
    for i in 0..cfg.maps_1g as u64 {
        let va = VA_1G + i * 2 * GIB;
        data(&mut maps, va, Level::new(2), &mut frames)?;
        if !gib_pages {
            maps.split_with(va, Level::new(2), &mut SplitMapping).map_err(table_err("split"))?;
            split_1g += 1;
        }
    }
    for i in 0..cfg.maps_2m as u64 {
        // Gaps between them, so that no two are virtually adjacent.
        data(&mut maps, VA_2M + i * 3 * MIB2, Level::new(1), &mut frames)?;
    }
    // Scattered 4 KiB pages: distinct random pages of a window eight times
    // their number.
    let window = (cfg.maps_4k as u64 * 8).max(1);
    let mut placed = 0;
    while placed < cfg.maps_4k {
        rng = xorshift(rng);
        let va = VA_4K + (rng % window) * PAGE;
        if maps.get(va).is_none() {
            data(&mut maps, va, Level::BASE, &mut frames)?;
            placed += 1;
        }
    }
    if cfg.run_4k {
        for i in 0..512 {
            data(&mut maps, VA_RUN + i * PAGE, Level::BASE, &mut frames)?;
        }
    }

    let mut data_list = Vec::new();
    let mut runs = Vec::new();
    let mut probes = Vec::new();
    for (page, m) in maps.iter() {
        if m.kind != Kind::Data {
            continue;
        }
        data_list.push((page.addr(), page.size() / PAGE));
        // The first and the last u64 of the mapping: a wrong frame reads a
        // wrong tag, a wrong page size faults or reads another frame.
        probes.push(page.addr());
        probes.push(page.last() - 7);
        match page.level().index() {
            1 => runs.push(page.addr()),
            2 => {
                let chunks = page.size() / MIB2;
                for j in 0..cfg.runs_per_1g as u64 {
                    runs.push(page.addr() + (mix(page.addr() ^ j) % chunks) * MIB2);
                }
            }
            _ => {}
        }
    }
    if cfg.run_4k {
        runs.push(VA_RUN);
    }
    runs.sort_unstable();
    runs.dedup();
    Ok(Layout { maps, data: data_list, runs, probes, split_1g, frames: frames.used })
}

/// Walk the mapping table and emit x86-64 page tables into slot 0 from
/// `PT_GPA` up. Returns CR3 and, per mapping, the address of its leaf
/// entry.
fn emit_page_tables(
    w: &mut Writer,
    maps: &MemTable<Mapping>,
    pt_end: u64,
) -> Result<(u64, usize, HashMap<u64, u64>), GuestError> {
    let mut next = PT_GPA;
    let mut alloc = || {
        if next >= pt_end {
            return Err(GuestError::Config("page tables do not fit in slot 0".into()));
        }
        next += PAGE;
        Ok(next - PAGE)
    };
    let pml4 = alloc()?;
    let mut leaves = HashMap::new();
    for (page, m) in maps.iter() {
        let va = page.addr();
        let leaf = page.level().index();
        let mut table = pml4;
        // Down from the PML4 (level 3) to the table that holds the leaf.
        for level in (leaf + 1..=3).rev() {
            let slot = table + ((va >> (12 + 9 * level)) & 511) * 8;
            let e = w.mem.read_u64(slot)?;
            table = if e & PTE_P != 0 {
                if e & PTE_PS != 0 {
                    return Err(GuestError::Config(format!("{va:#x} is inside a large mapping")));
                }
                e & PTE_ADDR
            } else {
                let t = alloc()?;
                w.u64(slot, t | PTE_P | PTE_RW | PTE_A)?;
                t
            };
        }
        let slot = table + ((va >> (12 + 9 * leaf)) & 511) * 8;
        if w.mem.read_u64(slot)? & PTE_P != 0 {
            return Err(GuestError::Config(format!("two mappings at {va:#x}")));
        }
        let ps = if leaf > 0 { PTE_PS } else { 0 };
        w.u64(slot, m.pa | PTE_P | PTE_RW | PTE_A | PTE_D | ps)?;
        leaves.insert(va, slot);
    }
    Ok((pml4, ((next - PT_GPA) / PAGE) as usize, leaves))
}

/// Translate `va` through the page tables at `cr3` in `mem` as the
/// processor walks them: the physical address and the leaf's level, or
/// `None` where the walk finds no mapping (or a PS bit where none may be).
/// Written apart from the emitter, to check it where the hardware cannot
/// (1 GiB pages on a KVM that does not offer them).
fn soft_walk(mem: &Memory, cr3: u64, va: u64) -> Result<Option<(u64, usize)>, GuestError> {
    let mut table = cr3 & PTE_ADDR;
    for level in (0..=3usize).rev() {
        let e = mem.read_u64(table + ((va >> (12 + 9 * level)) & 511) * 8)?;
        if e & PTE_P == 0 {
            return Ok(None);
        }
        let leaf = level == 0 || e & PTE_PS != 0;
        if leaf {
            if level == 3 {
                return Ok(None);
            }
            let mask = (1u64 << (12 + 9 * level)) - 1;
            // A large leaf's address bits below its size are reserved
            // (bit 12, PAT, is never set here): the processor faults.
            if e & PTE_ADDR & mask != 0 {
                return Ok(None);
            }
            return Ok(Some(((e & PTE_ADDR) | (va & mask), level)));
        }
        table = e & PTE_ADDR;
    }
    Ok(None)
}

/// Probes whose software walk does not give what `get_key_value` on the
/// mapping table says (frame + offset, and the mapping's level).
fn soft_walk_mismatches(
    mem: &Memory,
    cr3: u64,
    maps: &MemTable<Mapping>,
    probes: &[u64],
) -> Result<usize, GuestError> {
    let mut bad = 0;
    for &va in probes {
        let want = maps.get_key_value(va).map(|(p, m)| (m.pa + (va - p.addr()), p.level().index()));
        bad += usize::from(soft_walk(mem, cr3, va)? != want);
    }
    Ok(bad)
}

/// What [`check_page_tables`] found.
#[derive(Clone, Debug)]
pub struct PageTableCheck {
    /// Data mappings by level, as emitted.
    pub data_maps: [usize; 3],
    pub probes: usize,
    /// Probes the software walk translated differently from the table.
    pub mismatches: usize,
}

/// Without KVM: lay out `cfg`'s mappings (1 GiB ones kept whole if
/// `gib_pages`), emit the page tables into fresh guest memory, and walk
/// them in software for every probe address. `corrupt` rewrites the leaf
/// of the first 1 GiB mapping to a frame 2 MiB further (misaligned, so its
/// reserved bits are set), as a wrong emitter would.
pub fn check_page_tables(cfg: &Config, gib_pages: bool, corrupt: bool) -> Result<PageTableCheck, GuestError> {
    validate(cfg)?;
    let mem = Memory::new(&cfg.slots)?;
    let layout = build_layout(cfg, gib_pages)?;
    let mut w = Writer { mem: &mem, pages: BTreeSet::new() };
    let (pml4, _, leaves) = emit_page_tables(&mut w, &layout.maps, SYSTEM_SLOT.1)?;
    if corrupt {
        let (p, m) = layout
            .maps
            .iter()
            .find(|(p, _)| p.level() == Level::new(2))
            .ok_or_else(|| GuestError::Config("no 1 GiB mapping to corrupt".into()))?;
        let slot = *leaves.get(&p.addr()).ok_or_else(|| GuestError::Config("no leaf".into()))?;
        w.u64(slot, (m.pa + MIB2) | PTE_P | PTE_RW | PTE_A | PTE_D | PTE_PS)?;
    }
    let mut data_maps = [0; 3];
    for (p, m) in layout.maps.iter() {
        if m.kind == Kind::Data {
            data_maps[p.level().index()] += 1;
        }
    }
    let mismatches = soft_walk_mismatches(&mem, pml4, &layout.maps, &layout.probes)?;
    Ok(PageTableCheck { data_maps, probes: layout.probes.len(), mismatches })
}

/// What the guest writes in a round, page by page (guest-physical), as the
/// host's copy of the generator says.
fn predict_round(
    maps: &MemTable<Mapping>,
    data: &[(u64, u64)],
    runs: &[u64],
    mut x: u64,
    scatter: u64,
    nruns: u64,
) -> Result<BTreeSet<u64>, GuestError> {
    let pa_of = |va: u64| -> Result<u64, GuestError> {
        maps.get_key_value(va)
            .map(|(page, m)| m.pa + (va - page.addr()))
            .ok_or_else(|| GuestError::Config(format!("predicted write to unmapped {va:#x}")))
    };
    if (scatter > 0 && data.is_empty()) || (nruns > 0 && runs.is_empty()) {
        return Err(GuestError::Config("writes asked for, but nothing mapped to write to".into()));
    }
    let mut pages = BTreeSet::new();
    for _ in 0..scatter {
        x = xorshift(x);
        let (va, n) = data[((x & 0xffff_ffff) % data.len() as u64) as usize];
        let target = va + ((x >> 32) % n) * PAGE + (x & 0xff8);
        pages.insert(pa_of(target)? & !(PAGE - 1));
    }
    for _ in 0..nruns {
        x = xorshift(x);
        let va = runs[((x & 0xffff_ffff) % runs.len() as u64) as usize];
        for p in 0..512 {
            pages.insert(pa_of(va + p * PAGE)? & !(PAGE - 1));
        }
    }
    Ok(pages)
}

/// Bit `i` of word `w` of a slot's bitmap is the page `64 w + i` of the
/// slot: the guest-physical pages of one harvest.
pub fn dirty_pages<'a>(slots: &'a [(u64, u64)], bitmaps: &'a [Vec<u64>]) -> impl Iterator<Item = u64> + 'a {
    slots.iter().zip(bitmaps).flat_map(|(&(base, _), bm)| {
        bm.iter().enumerate().flat_map(move |(w, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let i = bits.trailing_zeros() as u64;
                    bits &= bits - 1;
                    base + (w as u64 * 64 + i) * PAGE
                })
            })
        })
    })
}

fn harvest(vm: &VmFd, slots: &[(u64, u64)]) -> Result<(Vec<Vec<u64>>, Duration), GuestError> {
    let t = Instant::now();
    let mut out = Vec::with_capacity(slots.len());
    for (i, &(_, size)) in slots.iter().enumerate() {
        out.push(vm.get_dirty_log(i as u32, size as usize).map_err(kvm_err("KVM_GET_DIRTY_LOG"))?);
    }
    Ok((out, t.elapsed()))
}

/// `KVM_RESET_DIRTY_RINGS`: `_IO(KVMIO, 0xc7)` (no kvm-ioctls wrapper).
const KVM_RESET_DIRTY_RINGS: libc::c_ulong = (0xae << 8) | 0xc7;
/// `kvm_dirty_gfn.flags`: the kernel pushed the entry; userspace harvested it.
const KVM_DIRTY_GFN_F_DIRTY: u32 = 1;
const KVM_DIRTY_GFN_F_RESET: u32 = 2;

/// One vCPU's dirty ring, `mmap`ped from the vCPU fd, and the host's fetch
/// index into it.
struct DirtyRing {
    gfns: *mut kvm_dirty_gfn,
    entries: u32,
    fetch: u32,
    bytes: usize,
}

impl DirtyRing {
    /// Map the ring of `vcpu` (`bytes` long, as enabled on its VM).
    fn map(vcpu: &VcpuFd, bytes: usize) -> Result<DirtyRing, GuestError> {
        // SAFETY: sysconf has no memory effects.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let offset = i64::from(KVM_DIRTY_LOG_PAGE_OFFSET) * page as i64;
        // SAFETY: a fresh shared mapping of the vCPU fd (open for the call)
        // at the offset KVM documents for the dirty ring, `bytes` long as
        // enabled; the kernel picks the address, so nothing is overwritten.
        // The mapping keeps its own reference to the file.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                vcpu.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(GuestError::Kvm {
                what: "mmap of the vCPU dirty ring",
                err: kvm_ioctls::Error::last(),
            });
        }
        let entries = (bytes / std::mem::size_of::<kvm_dirty_gfn>()) as u32;
        Ok(DirtyRing { gfns: ptr.cast(), entries, fetch: 0, bytes })
    }

    /// Walk the ring from the fetch index while entries are DIRTY: append
    /// each `(slot, offset)` to `out` and mark it RESET. Returns how many.
    fn collect(&mut self, out: &mut Vec<(u32, u64)>) -> usize {
        let mut n = 0;
        loop {
            let i = (self.fetch & (self.entries - 1)) as usize;
            // SAFETY: `i < entries`, so the entry is inside the live mapping
            // (`entries` entries of 16 bytes, aligned: the mapping is
            // page-aligned). The kernel writes `slot` and `offset` before it
            // sets DIRTY with a release store, and does not touch the entry
            // again until userspace has marked it RESET and asked for
            // KVM_RESET_DIRTY_RINGS, so after the Acquire load of `flags`
            // the other two fields are stable. `flags` is only ever
            // accessed atomically by this side.
            let entry = unsafe { self.gfns.add(i) };
            // SAFETY: as above; `flags` is a 4-aligned u32 in the mapping.
            let flags = unsafe { AtomicU32::from_ptr(&raw mut (*entry).flags) };
            if flags.load(Ordering::Acquire) & KVM_DIRTY_GFN_F_DIRTY == 0 {
                break;
            }
            // SAFETY: as above.
            let (slot, offset) = unsafe {
                (
                    std::ptr::read_volatile(&raw const (*entry).slot),
                    std::ptr::read_volatile(&raw const (*entry).offset),
                )
            };
            out.push((slot, offset));
            flags.store(KVM_DIRTY_GFN_F_RESET, Ordering::Release);
            self.fetch = self.fetch.wrapping_add(1);
            n += 1;
        }
        n
    }
}

impl Drop for DirtyRing {
    fn drop(&mut self) {
        // SAFETY: `gfns` and `bytes` are the mapping made in `map`, not
        // unmapped before; nothing borrows it past this point.
        unsafe { libc::munmap(self.gfns.cast(), self.bytes) };
    }
}

/// Ring mode's harvester: the ring, the VM to reset it on, and what has
/// been harvested of the current round (at full exits, then at its end).
struct RingHarvester {
    ring: DirtyRing,
    vm_fd: RawFd,
    pending: Vec<(u32, u64)>,
    full_exits: u32,
    time: Duration,
}

impl RingHarvester {
    /// Harvest the ring into `pending` and hand the entries back to KVM.
    /// Returns how many entries there were.
    fn drain(&mut self) -> Result<usize, GuestError> {
        let t = Instant::now();
        let n = self.ring.collect(&mut self.pending);
        // A harvest that finds every entry dirty may have found a ring the
        // kernel had lapped (it pushed past the soft limit before exiting):
        // entries overwritten are lost, so the round cannot be trusted.
        if n >= self.ring.entries as usize {
            return Err(GuestError::RingOverflow { entries: self.ring.entries });
        }
        // SAFETY: KVM_RESET_DIRTY_RINGS takes no argument; `vm_fd` is the
        // VM's fd, open for as long as this harvester lives (the VM is
        // declared before it, so dropped after).
        let r = unsafe { libc::ioctl(self.vm_fd, KVM_RESET_DIRTY_RINGS) };
        if r < 0 {
            return Err(GuestError::Kvm { what: "KVM_RESET_DIRTY_RINGS", err: kvm_ioctls::Error::last() });
        }
        self.time += t.elapsed();
        Ok(n)
    }

    /// This round's entries, full exits and harvest time; starts the next.
    fn take_round(&mut self) -> (Vec<(u32, u64)>, u32, Duration) {
        let out = (std::mem::take(&mut self.pending), self.full_exits, self.time);
        self.full_exits = 0;
        self.time = Duration::ZERO;
        out
    }
}

/// The guest-physical page of a ring entry: `offset` pages into memslot
/// `slot` (address space 0, so the slot id is the index).
fn ring_page(slots: &[(u64, u64)], slot: u32, offset: u64) -> Result<u64, GuestError> {
    match slots.get(slot as usize) {
        Some(&(base, size)) if offset < size / PAGE => Ok(base + offset * PAGE),
        _ => Err(GuestError::BadRingEntry { slot, offset }),
    }
}

/// What a vCPU exit was, owned (so that the vCPU is free again).
enum Exit {
    RingFull,
    Out(u16),
    Hlt,
    Shutdown,
    Mmio(u64, bool),
    Other(String),
}

/// Run the vCPU until it signals on `port` (or halts, for `None`). In
/// ring mode a full ring is harvested into `ring` and the vCPU resumed.
fn run_until(
    vcpu: &mut VcpuFd,
    phase: &'static str,
    port: Option<u16>,
    mut ring: Option<&mut RingHarvester>,
) -> Result<(), GuestError> {
    loop {
        let exit = match vcpu.run() {
            Ok(VcpuExit::Unsupported(KVM_EXIT_DIRTY_RING_FULL)) if ring.is_some() => Exit::RingFull,
            Ok(VcpuExit::IoOut(p, _)) => Exit::Out(p),
            Ok(VcpuExit::Hlt) => Exit::Hlt,
            Ok(VcpuExit::Shutdown) => Exit::Shutdown,
            Ok(VcpuExit::MmioRead(addr, _)) => Exit::Mmio(addr, false),
            Ok(VcpuExit::MmioWrite(addr, _)) => Exit::Mmio(addr, true),
            Ok(VcpuExit::Intr) => continue,
            Ok(VcpuExit::FailEntry(reason, cpu)) => {
                Exit::Other(format!("entry failed, hardware reason {reason:#x} on cpu {cpu}"))
            }
            Ok(other) => Exit::Other(format!("{other:?}")),
            Err(e) if e.errno() == 4 => continue, // EINTR
            Err(err) => return Err(GuestError::Kvm { what: "KVM_RUN", err }),
        };
        return match (exit, port) {
            (Exit::RingFull, _) => {
                if let Some(h) = ring.as_deref_mut() {
                    h.full_exits += 1;
                    // A full ring with nothing to harvest would exit again
                    // at once, forever: the kernel lapped the fetch index.
                    if h.drain()? == 0 {
                        return Err(GuestError::RingOverflow { entries: h.ring.entries });
                    }
                }
                continue;
            }
            (Exit::Out(p), Some(want)) if p == want => Ok(()),
            (Exit::Hlt, None) => Ok(()),
            (Exit::Out(p), want) => {
                Err(GuestError::UnexpectedPort { phase, port: p, expected: want.unwrap_or(0) })
            }
            (Exit::Hlt, Some(_)) => Err(GuestError::UnexpectedExit { phase, exit: "hlt".into() }),
            (Exit::Shutdown, _) => {
                let rip = vcpu.get_regs().map_err(kvm_err("KVM_GET_REGS"))?.rip;
                let cr2 = vcpu.get_sregs().map_err(kvm_err("KVM_GET_SREGS"))?.cr2;
                Err(GuestError::Shutdown { phase, rip, cr2 })
            }
            (Exit::Mmio(addr, write), _) => Err(GuestError::Mmio { phase, addr, write }),
            (Exit::Other(exit), _) => Err(GuestError::UnexpectedExit { phase, exit }),
        };
    }
}

fn set_round(vcpu: &VcpuFd, seed: u64, scatter: u64, runs: u64) -> Result<(), GuestError> {
    let mut regs = vcpu.get_regs().map_err(kvm_err("KVM_GET_REGS"))?;
    regs.rdi = seed;
    regs.r12 = scatter;
    regs.r13 = runs;
    vcpu.set_regs(&regs).map_err(kvm_err("KVM_SET_REGS"))
}

fn validate(cfg: &Config) -> Result<(), GuestError> {
    let bad = |s: String| Err(GuestError::Config(s));
    if cfg.slots.first() != Some(&SYSTEM_SLOT) {
        return bad(format!("slot 0 must be {SYSTEM_SLOT:#x?}"));
    }
    for w in cfg.slots.windows(2) {
        if w[0].0 + w[0].1 > w[1].0 {
            return bad("slots must be sorted and disjoint".into());
        }
    }
    for &(base, size) in &cfg.slots {
        if base % (64 * PAGE) != 0 || size % MIB2 != 0 || size == 0 {
            return bad(format!(
                "slot {base:#x}+{size:#x}: base must be a multiple of 256 KiB, size of 2 MiB"
            ));
        }
    }
    if cfg.maps_1g + cfg.maps_2m + cfg.maps_4k == 0 && !cfg.run_4k {
        return bad("no data mapping".into());
    }
    if cfg.runs > 0 && cfg.maps_2m == 0 && !cfg.run_4k && (cfg.maps_1g == 0 || cfg.runs_per_1g == 0) {
        return bad("2 MiB runs asked for, but no 2 MiB run is mapped".into());
    }
    Ok(())
}

fn segment(selector: u16, type_: u8, long: bool) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_,
        present: 1,
        dpl: 0,
        db: u8::from(!long),
        s: 1,
        l: u8::from(long),
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// Build the VM and the guest, probe, migrate, verify. See the module
/// documentation.
pub fn run(cfg: &Config) -> Result<Report, GuestError> {
    validate(cfg)?;
    // Memory first: it must outlive the VM that maps it (locals drop in
    // reverse order).
    let src = Memory::new(&cfg.slots)?;
    let dst = Memory::new(&cfg.slots)?;
    let kvm = Kvm::new().map_err(|e| GuestError::Unavailable(format!("cannot open /dev/kvm: {e}")))?;
    let vm = kvm.create_vm().map_err(|e| GuestError::Unavailable(format!("cannot create a VM: {e}")))?;
    // The dirty ring: the largest ring in bytes, 0 where not offered (x86
    // offers KVM_CAP_DIRTY_LOG_RING; the _ACQ_REL one is the same ring with
    // the memory ordering spelled out, which the harvest follows anyway).
    let (ring_cap, dirty_ring_max_bytes) = match vm.check_extension_int(Cap::DirtyLogRing) {
        n if n > 0 => (KVM_CAP_DIRTY_LOG_RING, n),
        _ => (
            KVM_CAP_DIRTY_LOG_RING_ACQ_REL,
            vm.check_extension_raw(libc::c_ulong::from(KVM_CAP_DIRTY_LOG_RING_ACQ_REL)).max(0),
        ),
    };
    let dirty_ring_offered = dirty_ring_max_bytes > 0;
    // Ring mode: enable it now, before the vCPU exists (KVM refuses after).
    let ring_bytes = match cfg.dirty_log {
        DirtyLog::Bitmap => None,
        DirtyLog::Ring { entries } => {
            if !dirty_ring_offered {
                return Err(GuestError::RingUnavailable(
                    "KVM_CHECK_EXTENSION(KVM_CAP_DIRTY_LOG_RING) returned 0".into(),
                ));
            }
            let entry = std::mem::size_of::<kvm_dirty_gfn>() as u64;
            // A power of two of at least one page, at most what is offered.
            let max = 1u64 << (u64::from(dirty_ring_max_bytes as u32).ilog2());
            let bytes = (u64::from(entries.max(1)).next_power_of_two() * entry).clamp(PAGE, max.max(PAGE));
            let cap = kvm_enable_cap { cap: ring_cap, args: [bytes, 0, 0, 0], ..Default::default() };
            vm.enable_cap(&cap).map_err(|e| {
                GuestError::RingUnavailable(format!(
                    "KVM_ENABLE_CAP(KVM_CAP_DIRTY_LOG_RING, {bytes} bytes) failed: {e}"
                ))
            })?;
            Some(bytes)
        }
    };
    for (i, &(base, size, host)) in src.regions.iter().enumerate() {
        let region = kvm_userspace_memory_region {
            slot: i as u32,
            flags: KVM_MEM_LOG_DIRTY_PAGES,
            guest_phys_addr: base,
            memory_size: size,
            userspace_addr: host as u64,
        };
        // SAFETY: `host` is the start of a live anonymous mapping of `size`
        // bytes owned by `src`; `src` was declared before `vm`, so it is
        // dropped (unmapped) only after the VM's fd is closed and its
        // memslots are gone. The slots are disjoint (checked by `validate`).
        unsafe { vm.set_user_memory_region(region) }.map_err(kvm_err("KVM_SET_USER_MEMORY_REGION"))?;
    }
    // Needed on Intel hosts without unrestricted guest; below slot 1.
    vm.set_tss_address(0xfffb_d000).map_err(kvm_err("KVM_SET_TSS_ADDR"))?;
    let mut vcpu =
        vm.create_vcpu(0).map_err(|e| GuestError::Unavailable(format!("cannot create a vCPU: {e}")))?;
    let mut ring = match ring_bytes {
        None => None,
        Some(bytes) => Some(RingHarvester {
            ring: DirtyRing::map(&vcpu, bytes as usize)?,
            vm_fd: vm.as_raw_fd(),
            pending: Vec::new(),
            full_exits: 0,
            time: Duration::ZERO,
        }),
    };
    let cpuid = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).map_err(kvm_err("KVM_GET_SUPPORTED_CPUID"))?;
    vcpu.set_cpuid2(&cpuid).map_err(kvm_err("KVM_SET_CPUID2"))?;
    // 1 GiB guest pages: CPUID 0x8000_0001 EDX bit 26 (pdpe1gb). A KVM
    // that does not offer them (some shadow-paging ones) faults on a PDPTE
    // with PS set, so the 1 GiB entries are then split in the table.
    let gib_pages_offered =
        cpuid.as_slice().iter().any(|e| e.function == 0x8000_0001 && e.edx & (1 << 26) != 0);

    // The guest: mappings, page tables, tags, lists, code.
    let layout = build_layout(cfg, gib_pages_offered)?;
    let mut w = Writer { mem: &src, pages: BTreeSet::new() };
    let (pml4, page_table_pages, leaves) = emit_page_tables(&mut w, &layout.maps, SYSTEM_SLOT.1)?;
    for (page, m) in layout.maps.iter().filter(|(_, m)| m.kind == Kind::Data) {
        w.u64(m.pa, tag_at(m.tag, 0))?;
        w.u64(m.pa + page.size() - 8, tag_at(m.tag, page.size() - 8))?;
    }
    let mut probes = layout.probes.clone();
    let mut code = GUEST_CODE.to_vec();
    let mut fault_va = None;
    let first_of = |level: usize| {
        layout
            .maps
            .iter()
            .find(|(p, m)| m.kind == Kind::Data && p.level().index() == level)
            .map(|(p, m)| (p, *m))
    };
    let missing_fault =
        || GuestError::Config(format!("{:?} needs a mapping it can be planted in", cfg.fault));
    match cfg.fault {
        Fault::None | Fault::MissDirty => {}
        Fault::CorruptTag => {
            let (p, m) = first_of(1).ok_or_else(missing_fault)?;
            w.u64(m.pa, tag_at(m.tag, 0) ^ 1)?;
            fault_va = Some(p.addr());
        }
        Fault::WrongPte => {
            let mut small =
                layout.maps.iter().filter(|(p, m)| m.kind == Kind::Data && p.level().index() == 0);
            let ((a, _), (_, b)) = small.next().zip(small.next()).ok_or_else(missing_fault)?;
            let slot = *leaves.get(&a.addr()).ok_or_else(missing_fault)?;
            w.u64(slot, b.pa | PTE_P | PTE_RW | PTE_A | PTE_D)?;
            fault_va = Some(a.addr());
        }
        Fault::ClearPs => {
            let (p, _) = first_of(1).ok_or_else(missing_fault)?;
            let slot = *leaves.get(&p.addr()).ok_or_else(missing_fault)?;
            let e = src.read_u64(slot)?;
            w.u64(slot, e & !PTE_PS)?;
            fault_va = Some(p.addr());
        }
        Fault::UnmappedProbe => {
            probes.insert(probes.len() / 2, VA_UNMAPPED);
            fault_va = Some(VA_UNMAPPED);
        }
        Fault::BadPort => code[ROUND_PORT_BYTE] = 0x12,
    }

    // Lists and the control block (identity-mapped, so VA = GPA).
    let mut next = LISTS_GPA;
    let mut list = |w: &mut Writer, words: &[u64]| {
        let at = next;
        next = (next + words.len() as u64 * 8).next_multiple_of(64);
        if next > LISTS_END {
            return Err(GuestError::Config("lists do not fit in slot 0".into()));
        }
        for (i, &v) in words.iter().enumerate() {
            w.u64(at + i as u64 * 8, v)?;
        }
        Ok(at)
    };
    let probe_at = list(&mut w, &probes)?;
    let flat: Vec<u64> = layout.data.iter().flat_map(|&(va, n)| [va, n]).collect();
    let data_at = list(&mut w, &flat)?;
    let runs_at = list(&mut w, &layout.runs)?;
    // The results area: not written by the host, reserved here.
    let results_at = next;
    next += probes.len() as u64 * 8;
    if next > LISTS_END {
        return Err(GuestError::Config("results do not fit in slot 0".into()));
    }
    let ctrl = [
        probe_at,
        probes.len() as u64,
        results_at,
        data_at,
        layout.data.len() as u64,
        runs_at,
        layout.runs.len() as u64,
    ];
    for (i, &v) in ctrl.iter().enumerate() {
        w.u64(CTRL_GPA + i as u64 * 8, v)?;
    }
    w.bytes(CODE_GPA, &code)?;
    // A GDT matching the segment registers: null, code 0x08, data 0x10.
    for (i, &d) in [0, 0x00af_9b00_0000_ffff, 0x00cf_9300_0000_ffff].iter().enumerate() {
        w.u64(GDT_GPA + i as u64 * 8, d)?;
    }
    let host_pages = std::mem::take(&mut w.pages);

    // Long mode straight away: paging on, PAE, EFER.LME|LMA, 64-bit CS.
    let mut sregs = vcpu.get_sregs().map_err(kvm_err("KVM_GET_SREGS"))?;
    sregs.cs = segment(0x08, 0xb, true);
    let data_seg = segment(0x10, 0x3, false);
    (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data_seg, data_seg, data_seg, data_seg, data_seg);
    sregs.gdt.base = GDT_GPA;
    sregs.gdt.limit = 23;
    sregs.idt.base = 0;
    sregs.idt.limit = 0; // no IDT: any exception is a triple fault, a Shutdown exit
    sregs.cr3 = pml4;
    sregs.cr4 = 1 << 5; // PAE
    sregs.cr0 = 1 | (1 << 4) | (1 << 5) | (1 << 31); // PE | ET | NE | PG
    sregs.efer = (1 << 8) | (1 << 10); // LME | LMA
    vcpu.set_sregs(&sregs).map_err(kvm_err("KVM_SET_SREGS"))?;
    let mut regs = vcpu.get_regs().map_err(kvm_err("KVM_GET_REGS"))?;
    regs.rip = CODE_GPA;
    regs.rflags = 2;
    regs.rsi = CTRL_GPA;
    regs.rsp = 0;
    vcpu.set_regs(&regs).map_err(kvm_err("KVM_SET_REGS"))?;

    // The same page tables walked in software, against the table.
    let soft_walk_mismatches = soft_walk_mismatches(&src, pml4, &layout.maps, &layout.probes)?;

    // Round 0: the probe pass.
    run_until(&mut vcpu, "the probe pass", Some(PORT_PROBED), ring.as_mut())?;
    let mut probe_mismatches = Vec::new();
    for (i, &va) in probes.iter().enumerate() {
        let got = src.read_u64(results_at + i as u64 * 8)?;
        let expected = match layout.maps.get_key_value(va) {
            Some((page, m)) if m.kind == Kind::Data => Some(tag_at(m.tag, va - page.addr())),
            _ => None,
        };
        if expected != Some(got) {
            probe_mismatches.push(ProbeMismatch { va, got, expected });
        }
    }

    // The dirty table: guest-physical page -> the round that last wrote it.
    let mut dirty: MemTable<u32> = MemTable::new();
    // The prediction of the same, from the host's writes and generator.
    let mut predicted: BTreeMap<u64, u32> = BTreeMap::new();
    let mut harvests = Vec::new();
    let mut rounds = Vec::new();
    // Whether a guest-physical page is in a frame of a 2 MiB or 1 GiB
    // mapping: the frame table answers with the frame's level.
    let in_large = |gpa: u64| layout.frames.get_key_value(gpa).is_some_and(|(p, _)| p.level() > Level::BASE);

    let mut round = 0u32;
    let mut scatter = cfg.scatter;
    let mut nruns = cfg.runs;
    let converged;
    loop {
        // What the guest was predicted to write in this round.
        let expect: BTreeSet<u64> = if round == 0 {
            let end = results_at + probes.len() as u64 * 8;
            (results_at & !(PAGE - 1)..end).step_by(PAGE as usize).collect()
        } else {
            let seed = mix(cfg.seed ^ u64::from(round)) | 1;
            predict_round(&layout.maps, &layout.data, &layout.runs, seed, scatter, nruns)?
        };
        let (mut bitmaps, mut entries, harvest_ioctl, ring_full_exits, mut got) = match ring.as_mut() {
            None => {
                let (bitmaps, t) = harvest(&vm, &cfg.slots)?;
                let got: BTreeSet<u64> = dirty_pages(&cfg.slots, &bitmaps).collect();
                (bitmaps, Vec::new(), t, 0, got)
            }
            Some(h) => {
                h.drain()?;
                let (entries, full, t) = h.take_round();
                // The ring may name a page more than once: the set dedupes.
                let got = entries
                    .iter()
                    .map(|&(slot, off)| ring_page(&cfg.slots, slot, off))
                    .collect::<Result<BTreeSet<u64>, _>>()?;
                (Vec::new(), entries, t, full, got)
            }
        };
        // The live phase ends when a round dirties few enough pages (or at
        // the round limit): the guest then stays stopped and this round's
        // pages are the rest.
        let last = round > 0 && (round >= cfg.max_rounds || got.len() <= cfg.converge_pages);
        if last && cfg.fault == Fault::MissDirty {
            // Drop the lowest dirty data page from the harvest, as a buggy
            // harvester would.
            if let Some(&p) = got.iter().find(|&&p| p >= cfg.slots.get(1).map_or(u64::MAX, |s| s.0)) {
                got.remove(&p);
                entries.retain(|&(slot, off)| ring_page(&cfg.slots, slot, off).ok() != Some(p));
                for (s, bm) in cfg.slots.iter().zip(bitmaps.iter_mut()) {
                    if p >= s.0 && p < s.0 + s.1 {
                        let n = (p - s.0) / PAGE;
                        bm[(n / 64) as usize] &= !(1 << (n % 64));
                    }
                }
            }
        }
        if ring.is_none() {
            for &p in &got {
                dirty.insert(p, round).map_err(table_err("dirty table"))?;
            }
        } else {
            // Straight from the ring's entries (a repeat overwrites).
            for &(slot, off) in &entries {
                dirty.insert(ring_page(&cfg.slots, slot, off)?, round).map_err(table_err("dirty table"))?;
            }
        }
        for &p in &expect {
            predicted.insert(p, round);
        }
        if round == 0 {
            for &p in &host_pages {
                dirty.insert(p, 0).map_err(table_err("dirty table"))?;
                predicted.insert(p, 0);
            }
        }
        let missing: Vec<u64> = expect.difference(&got).copied().collect();
        let extra: Vec<u64> = got.difference(&expect).copied().collect();

        // Send the pages the table says this round wrote last.
        let mut sent = 0;
        let mut sent_in_large = 0;
        for (page, &r) in dirty.iter() {
            if r == round {
                copy_page(&src, &dst, page.addr())?;
                sent += 1;
                sent_in_large += usize::from(in_large(page.addr()));
            }
        }
        let ring_entries = entries.len();
        harvests.push(Harvest { round, bitmaps, ring: entries });
        rounds.push(RoundStat {
            round,
            phase: if round == 0 {
                Phase::Setup
            } else if last {
                Phase::StopAndCopy
            } else {
                Phase::Live
            },
            scatter: if round == 0 { 0 } else { scatter },
            runs: if round == 0 { 0 } else { nruns },
            dirty: got.len(),
            expected: expect.len(),
            missing_count: missing.len(),
            missing: missing.into_iter().take(8).collect(),
            extra_count: extra.len(),
            extra: extra.into_iter().take(8).collect(),
            sent,
            sent_in_large,
            harvest_ioctl,
            ring_entries,
            ring_full_exits,
        });
        if last {
            converged = got.len() <= cfg.converge_pages;
            break;
        }
        if round > 0 {
            scatter /= 2;
            nruns /= 2;
        }
        round += 1;
        // Resume the guest for the next round.
        set_round(&vcpu, mix(cfg.seed ^ u64::from(round)) | 1, scatter, nruns)?;
        run_until(&mut vcpu, "a round of writes", Some(PORT_ROUND), ring.as_mut())?;
    }

    // The guest stays stopped for the compare; then it is let halt, which
    // must write nothing.
    let (dest_diff_pages, first_dest_diff, compared_bytes) = compare(&src, &dst)?;
    set_round(&vcpu, 0, 0, 0)?;
    run_until(&mut vcpu, "the final halt", None, ring.as_mut())?;
    let dirty_after_stop = match ring.as_mut() {
        None => dirty_pages(&cfg.slots, &harvest(&vm, &cfg.slots)?.0).count(),
        Some(h) => {
            h.drain()?;
            h.take_round().0.len()
        }
    };

    let mut table_mismatches = 0;
    let mut first_table_mismatch = None;
    let mut a = dirty.iter().map(|(p, &r)| (p.addr(), r)).peekable();
    let mut b = predicted.iter().map(|(&p, &r)| (p, r)).peekable();
    loop {
        let (x, y) = (a.peek().copied(), b.peek().copied());
        let (addr, l, r) = match (x, y) {
            (None, None) => break,
            (Some(x), Some(y)) if x.0 == y.0 => {
                a.next();
                b.next();
                (x.0, Some(x.1), Some(y.1))
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                a.next();
                (x.0, Some(x.1), None)
            }
            (Some(x), None) => {
                a.next();
                (x.0, Some(x.1), None)
            }
            (_, Some(y)) => {
                b.next();
                (y.0, None, Some(y.1))
            }
        };
        if l != r {
            table_mismatches += 1;
            first_table_mismatch.get_or_insert((addr, l, r));
        }
    }
    // Every entry of the dirty table is a base page, whatever the guest's
    // page sizes.
    if let Some((p, _)) = dirty.iter().find(|(p, _)| p.level() != Level::BASE) {
        return Err(GuestError::Config(format!("dirty table holds a large entry at {:#x}", p.addr())));
    }

    let mut data_maps = [0; 3];
    for (p, m) in layout.maps.iter() {
        if m.kind == Kind::Data {
            data_maps[p.level().index()] += 1;
        }
    }
    Ok(Report {
        slots: cfg.slots.clone(),
        dirty_ring_offered,
        dirty_ring_max_bytes,
        dirty_log: cfg.dirty_log,
        ring_bytes,
        gib_pages_offered,
        split_1g: layout.split_1g,
        data_maps,
        all_maps: layout.maps.len(),
        page_table_pages,
        probes: probes.len(),
        probe_mismatches,
        soft_walk_mismatches,
        fault_va,
        rounds,
        converged,
        dirty_after_stop,
        dest_diff_pages,
        first_dest_diff,
        compared_bytes,
        table_entries: dirty.len(),
        table_mismatches,
        first_table_mismatch,
        harvests,
    })
}

/// One contender of [`harvest_bench`].
#[derive(Clone, Debug)]
pub struct BenchRow {
    pub name: &'static str,
    pub ns_per_page: f64,
    /// Builds timed.
    pub reps: u32,
    /// Distinct pages the structure holds at the end of one build.
    pub pages: usize,
}

/// One build of a contender from the harvests: the time, and the
/// distinct pages it ended with (counted after the clock stops).
fn build_once(report: &Report, which: usize, span_words: usize) -> (Duration, usize) {
    let slots = &report.slots;
    let t = Instant::now();
    match which {
        0 => {
            // MemTable: page -> last round.
            let mut m: MemTable<u32> = MemTable::new();
            let mut failed = 0usize;
            for h in &report.harvests {
                for p in dirty_pages(slots, &h.bitmaps) {
                    failed += usize::from(m.insert(p, h.round).is_err());
                }
            }
            black_box(&m);
            let e = t.elapsed();
            (e, m.len() + failed)
        }
        1 => {
            let mut hm: HashMap<u64, u32> = HashMap::new();
            for h in &report.harvests {
                for p in dirty_pages(slots, &h.bitmaps) {
                    hm.insert(p, h.round);
                }
            }
            black_box(&hm);
            let e = t.elapsed();
            (e, hm.len())
        }
        2 => {
            let mut bs: BTreeSet<u64> = BTreeSet::new();
            for h in &report.harvests {
                for p in dirty_pages(slots, &h.bitmaps) {
                    bs.insert(p / PAGE);
                }
            }
            black_box(&bs);
            let e = t.elapsed();
            (e, bs.len())
        }
        _ => {
            // A flat bitmap over the whole guest-physical span: OR each
            // slot's words in at the slot's offset (slot bases are 64-page
            // aligned), whole words, no per-bit work.
            let mut flat = vec![0u64; span_words];
            for h in &report.harvests {
                for (&(base, _), bm) in slots.iter().zip(&h.bitmaps) {
                    let off = (base / PAGE / 64) as usize;
                    for (dst, &w) in flat[off..off + bm.len()].iter_mut().zip(bm) {
                        *dst |= w;
                    }
                }
            }
            black_box(&flat);
            let e = t.elapsed();
            (e, flat.iter().map(|w| w.count_ones() as usize).sum())
        }
    }
}

/// Time converting the same KVM bitmaps (every harvest of `report`, in
/// round order) into each of four structures, each build from empty (the
/// drop not timed), the contenders interleaved in one run. Each repeats
/// until it has run for `min_time` and at least `min_reps` times.
/// Returns the rows (nanoseconds per dirty bit) and the dirty bits of one
/// build.
pub fn harvest_bench(report: &Report, min_time: Duration, min_reps: u32) -> (Vec<BenchRow>, usize) {
    let bits: usize = report
        .harvests
        .iter()
        .map(|h| h.bitmaps.iter().flatten().map(|w| w.count_ones() as usize).sum::<usize>())
        .sum();
    let span_words = report.slots.iter().map(|&(b, s)| b + s).max().unwrap_or(0).div_ceil(PAGE * 64) as usize;
    let names = ["MemTable<u32>", "HashMap<u64, u32>", "BTreeSet<u64>", "Vec<u64> bitmap"];
    let mut total = [Duration::ZERO; 4];
    let mut reps = [0u32; 4];
    let mut pages = [0usize; 4];
    let pending =
        |total: &[Duration; 4], reps: &[u32; 4], i: usize| total[i] < min_time || reps[i] < min_reps.max(1);
    while (0..4).any(|i| pending(&total, &reps, i)) {
        for i in 0..4 {
            if pending(&total, &reps, i) {
                let (t, n) = build_once(report, i, span_words);
                total[i] += t;
                reps[i] += 1;
                pages[i] = n;
            }
        }
    }
    let rows = (0..4)
        .map(|i| BenchRow {
            name: names[i],
            ns_per_page: total[i].as_nanos() as f64 / (f64::from(reps[i]) * bits.max(1) as f64),
            reps: reps[i],
            pages: pages[i],
        })
        .collect();
    (rows, bits)
}

/// One build of a ring contender from the ring harvests of `report`.
fn build_ring_once(report: &Report, which: usize) -> (Duration, usize) {
    let slots = &report.slots;
    let t = Instant::now();
    let mut failed = 0usize;
    if which == 0 {
        let mut m: MemTable<u32> = MemTable::new();
        for h in &report.harvests {
            for &(slot, off) in &h.ring {
                match ring_page(slots, slot, off) {
                    Ok(p) => failed += usize::from(m.insert(p, h.round).is_err()),
                    Err(_) => failed += 1,
                }
            }
        }
        black_box(&m);
        let e = t.elapsed();
        (e, m.len() + failed)
    } else {
        let mut hm: HashMap<u64, u32> = HashMap::new();
        for h in &report.harvests {
            for &(slot, off) in &h.ring {
                match ring_page(slots, slot, off) {
                    Ok(p) => {
                        hm.insert(p, h.round);
                    }
                    Err(_) => failed += 1,
                }
            }
        }
        black_box(&hm);
        let e = t.elapsed();
        (e, hm.len() + failed)
    }
}

/// Like [`harvest_bench`], for a ring-mode report: the same recorded ring
/// entries (every harvest, in round and ring order) turned into guest
/// pages and inserted into a `MemTable<u32>` and a `HashMap<u64, u32>`.
/// Returns the rows (nanoseconds per ring entry) and the entries of one
/// build.
pub fn ring_bench(report: &Report, min_time: Duration, min_reps: u32) -> (Vec<BenchRow>, usize) {
    let entries: usize = report.harvests.iter().map(|h| h.ring.len()).sum();
    let names = ["ring -> MemTable<u32>", "ring -> HashMap<u64, u32>"];
    let mut total = [Duration::ZERO; 2];
    let mut reps = [0u32; 2];
    let mut pages = [0usize; 2];
    let pending =
        |total: &[Duration; 2], reps: &[u32; 2], i: usize| total[i] < min_time || reps[i] < min_reps.max(1);
    while (0..2).any(|i| pending(&total, &reps, i)) {
        for i in 0..2 {
            if pending(&total, &reps, i) {
                let (t, n) = build_ring_once(report, i);
                total[i] += t;
                reps[i] += 1;
                pages[i] = n;
            }
        }
    }
    let rows = (0..2)
        .map(|i| BenchRow {
            name: names[i],
            ns_per_page: total[i].as_nanos() as f64 / (f64::from(reps[i]) * entries.max(1) as f64),
            reps: reps[i],
            pages: pages[i],
        })
        .collect();
    (rows, entries)
}
