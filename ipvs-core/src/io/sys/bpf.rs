//! bpf(2) wrappers. Attribute structs are the leading members of the kernel's `union bpf_attr`
//! for each command (the kernel accepts a shorter attr and treats the rest as zero).

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::cvt;

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_LINK_CREATE: libc::c_long = 28;

/// `BPF_MAP_TYPE_HASH`.
pub const MAP_TYPE_HASH: u32 = 1;
/// `BPF_MAP_TYPE_XSKMAP`.
pub const MAP_TYPE_XSKMAP: u32 = 17;
/// `BPF_PROG_TYPE_XDP`.
pub const PROG_TYPE_XDP: u32 = 6;
/// `BPF_XDP` attach type.
pub const ATTACH_TYPE_XDP: u32 = 37;
/// `XDP_FLAGS_SKB_MODE` (generic XDP).
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE` (native XDP).
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// `BPF_ANY` update flag.
pub const BPF_ANY: u64 = 0;

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, exclusively borrowed `#[repr(C)]` struct whose layout is the
    // prefix of `union bpf_attr` for `cmd` (callers in this file pair each command with its
    // struct); the size passed is exactly its size, so the kernel reads/writes only inside it.
    // Pointers stored inside the attr point to buffers that outlive this call (checked by the
    // callers, which keep them borrowed across it).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            size_of::<T>() as libc::c_uint,
        )
    };
    cvt(ret)
}

fn owned_fd(ret: libc::c_long) -> OwnedFd {
    // SAFETY: `ret` is a non-negative value returned by bpf(2) for a command that creates a
    // new file descriptor; nobody else owns it, so `OwnedFd` may take ownership (and close it).
    unsafe { OwnedFd::from_raw_fd(ret as libc::c_int) }
}

fn name16(name: &str) -> [u8; 16] {
    // Object names: at most 15 bytes of [A-Za-z0-9_.], NUL-terminated.
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().zip(name.bytes().take(15)) {
        *o = if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' {
            b
        } else {
            b'_'
        };
    }
    out
}

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
    map_ifindex: u32,
}

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// A BPF map: its fd and the key/value sizes it was created with (checked on every access).
#[derive(Debug)]
pub struct Map {
    fd: OwnedFd,
    key_size: usize,
    value_size: usize,
}

impl Map {
    /// `BPF_MAP_CREATE`.
    pub fn create(
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        name: &str,
    ) -> io::Result<Map> {
        let mut attr = MapCreateAttr {
            map_type,
            key_size,
            value_size,
            max_entries,
            map_name: name16(name),
            ..MapCreateAttr::default()
        };
        let ret = bpf(BPF_MAP_CREATE, &mut attr)?;
        Ok(Map {
            fd: owned_fd(ret),
            key_size: key_size as usize,
            value_size: value_size as usize,
        })
    }

    /// The map's fd (for `ld_map_fd` in a program).
    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    fn check(&self, key: &[u8], value: Option<usize>) -> io::Result<()> {
        if key.len() != self.key_size || value.is_some_and(|v| v != self.value_size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bpf map key or value of the wrong size",
            ));
        }
        Ok(())
    }

    /// `BPF_MAP_UPDATE_ELEM` with `flags` (`BPF_ANY`).
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> io::Result<()> {
        self.check(key, Some(value.len()))?;
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: key.as_ptr() as u64,
            value: value.as_ptr() as u64,
            flags,
            ..MapElemAttr::default()
        };
        // key/value lengths equal the map's sizes (checked above) and stay borrowed.
        bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
    }

    /// `BPF_MAP_LOOKUP_ELEM`; `Ok(false)` when the key is absent.
    pub fn lookup(&self, key: &[u8], value: &mut [u8]) -> io::Result<bool> {
        self.check(key, Some(value.len()))?;
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: key.as_ptr() as u64,
            value: value.as_mut_ptr() as u64,
            ..MapElemAttr::default()
        };
        match bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `BPF_MAP_DELETE_ELEM`; `Ok(false)` when the key was absent.
    pub fn delete(&self, key: &[u8]) -> io::Result<bool> {
        self.check(key, None)?;
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: key.as_ptr() as u64,
            ..MapElemAttr::default()
        };
        match bpf(BPF_MAP_DELETE_ELEM, &mut attr) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `BPF_PROG_LOAD` of `insns` (8-byte encoded instructions). On failure the verifier log is
/// returned with the error (a second load with `log_level = 1` collects it).
pub fn prog_load(
    prog_type: u32,
    expected_attach_type: u32,
    insns: &[[u8; 8]],
    name: &str,
) -> Result<OwnedFd, (io::Error, String)> {
    const LICENSE: &[u8] = b"GPL\0";
    let load = |log: Option<&mut Vec<u8>>| {
        let mut attr = ProgLoadAttr {
            prog_type,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: LICENSE.as_ptr() as u64,
            prog_name: name16(name),
            expected_attach_type,
            ..ProgLoadAttr::default()
        };
        if let Some(buf) = log {
            attr.log_level = 1;
            attr.log_size = buf.len() as u32;
            attr.log_buf = buf.as_mut_ptr() as u64;
            // The buffer stays borrowed (and unmoved) until `bpf` returns.
            bpf(BPF_PROG_LOAD, &mut attr)
        } else {
            bpf(BPF_PROG_LOAD, &mut attr)
        }
    };
    match load(None) {
        Ok(fd) => Ok(owned_fd(fd)),
        Err(first) => {
            let mut buf = vec![0u8; 1 << 20];
            let log = match load(Some(&mut buf)) {
                Ok(fd) => {
                    // Loaded with logging on: keep it (it happens when the first failure
                    // was transient, e.g. EAGAIN from the verifier).
                    return Ok(owned_fd(fd));
                }
                Err(_) => {
                    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                    String::from_utf8_lossy(&buf[..end]).into_owned()
                }
            };
            Err((first, log))
        }
    }
}

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    // The per-type union that follows; zero for XDP.
    _rest: [u64; 4],
}

/// `BPF_LINK_CREATE` attaching an XDP program to `ifindex` with `flags` (mode).
pub fn xdp_link_create(prog: BorrowedFd<'_>, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_ifindex: ifindex,
        attach_type: ATTACH_TYPE_XDP,
        flags,
        ..LinkCreateAttr::default()
    };
    bpf(BPF_LINK_CREATE, &mut attr).map(owned_fd)
}

#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// `BPF_PROG_TEST_RUN` once on `data`; returns the program's return value.
pub fn prog_test_run(prog: BorrowedFd<'_>, data: &[u8]) -> io::Result<u32> {
    let mut out = vec![0u8; data.len() + 512];
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        data_size_in: data.len() as u32,
        data_size_out: out.len() as u32,
        data_in: data.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat: 1,
        ..TestRunAttr::default()
    };
    bpf(BPF_PROG_TEST_RUN, &mut attr)?;
    Ok(attr.retval)
}
