//! The real libc functions behind the interposed ones, found with `dlsym(RTLD_NEXT)`.
//!
//! All are resolved in the library's constructor; a function called before that (another library's constructor
//! reading the clock) resolves its own on first use. A symbol this libc lacks (e.g. `epoll_pwait2` before glibc
//! 2.35) stays missing and its interposer fails with ENOSYS, as the missing function would.

use core::ffi::CStr;
use core::sync::atomic::{AtomicUsize, Ordering};

use libc::{
    c_int, c_long, c_uint, c_void, clockid_t, epoll_event, nfds_t, pollfd, sigset_t, time_t,
    timespec, timeval,
};

/// Marks a symbol that dlsym did not find (address 1 is never a function).
const MISSING: usize = 1;

/// One lazily resolved real function.
pub struct Slot {
    address: AtomicUsize,
    name: &'static CStr,
}

impl Slot {
    const fn new(name: &'static CStr) -> Slot {
        Slot {
            address: AtomicUsize::new(0),
            name,
        }
    }

    /// The real function's address, or `None` when this libc has none.
    #[inline]
    fn address(&self) -> Option<usize> {
        let mut address = self.address.load(Ordering::Acquire);
        if address == 0 {
            // SAFETY: dlsym with a NUL-terminated name; RTLD_NEXT finds the next definition after this library.
            let found = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr()) } as usize;
            address = if found == 0 { MISSING } else { found };
            self.address.store(address, Ordering::Release);
        }
        (address != MISSING).then_some(address)
    }
}

macro_rules! real_functions {
    ($($getter:ident: $slot:ident = $symbol:literal as $type:ty;)*) => {
        $(static $slot: Slot = Slot::new($symbol);)*

        /// Resolves every real function now (from the constructor), so the hot paths only load an address.
        pub fn resolve_all() {
            $(let _ = $slot.address();)*
        }

        $(
            #[doc = concat!("The real `", stringify!($getter), "`, if this libc has it.")]
            #[inline]
            pub fn $getter() -> Option<$type> {
                // SAFETY: the address came from dlsym for a symbol of exactly this C signature.
                $slot.address().map(|address| unsafe { core::mem::transmute::<usize, $type>(address) })
            }
        )*
    };
}

/// `clock_gettime`.
pub type ClockGettime = unsafe extern "C" fn(clockid_t, *mut timespec) -> c_int;
/// `clock_nanosleep`.
pub type ClockNanosleep =
    unsafe extern "C" fn(clockid_t, c_int, *const timespec, *mut timespec) -> c_int;
/// `pthread_cond_timedwait`.
pub type CondTimedwait = unsafe extern "C" fn(
    *mut libc::pthread_cond_t,
    *mut libc::pthread_mutex_t,
    *const timespec,
) -> c_int;
/// `pthread_cond_clockwait`.
pub type CondClockwait = unsafe extern "C" fn(
    *mut libc::pthread_cond_t,
    *mut libc::pthread_mutex_t,
    clockid_t,
    *const timespec,
) -> c_int;

real_functions! {
    clock_gettime: CLOCK_GETTIME = c"clock_gettime" as ClockGettime;
    gettimeofday: GETTIMEOFDAY = c"gettimeofday" as unsafe extern "C" fn(*mut timeval, *mut c_void) -> c_int;
    time: TIME = c"time" as unsafe extern "C" fn(*mut time_t) -> time_t;
    timespec_get: TIMESPEC_GET = c"timespec_get" as unsafe extern "C" fn(*mut timespec, c_int) -> c_int;
    epoll_wait: EPOLL_WAIT = c"epoll_wait" as unsafe extern "C" fn(c_int, *mut epoll_event, c_int, c_int) -> c_int;
    epoll_pwait: EPOLL_PWAIT = c"epoll_pwait"
        as unsafe extern "C" fn(c_int, *mut epoll_event, c_int, c_int, *const sigset_t) -> c_int;
    epoll_pwait2: EPOLL_PWAIT2 = c"epoll_pwait2"
        as unsafe extern "C" fn(c_int, *mut epoll_event, c_int, *const timespec, *const sigset_t) -> c_int;
    poll: POLL = c"poll" as unsafe extern "C" fn(*mut pollfd, nfds_t, c_int) -> c_int;
    ppoll: PPOLL = c"ppoll" as unsafe extern "C" fn(*mut pollfd, nfds_t, *const timespec, *const sigset_t) -> c_int;
    nanosleep: NANOSLEEP = c"nanosleep" as unsafe extern "C" fn(*const timespec, *mut timespec) -> c_int;
    clock_nanosleep: CLOCK_NANOSLEEP = c"clock_nanosleep" as ClockNanosleep;
    sleep: SLEEP = c"sleep" as unsafe extern "C" fn(c_uint) -> c_uint;
    usleep: USLEEP = c"usleep" as unsafe extern "C" fn(libc::useconds_t) -> c_int;
    syscall: SYSCALL = c"syscall" as unsafe extern "C" fn(c_long, ...) -> c_long;
    pthread_cond_timedwait: COND_TIMEDWAIT = c"pthread_cond_timedwait" as CondTimedwait;
    pthread_cond_clockwait: COND_CLOCKWAIT = c"pthread_cond_clockwait" as CondClockwait;
}
