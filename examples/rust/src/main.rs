//! A Rust caller of libsdpa through its C API (include/sdpa/sdpa.h), with no
//! crates: the structs and functions are declared here by hand, field for
//! field. One call exercises what a foreign caller most easily gets wrong
//! (element strides of a non-contiguous layout, stride-0 broadcast, grouped
//! query heads, Dv != Dk, causal + window + mask, lse), and is checked
//! against a naive f64 attention written here from the definition in sdpa.h.
//! A second, bad call must fail with a message and leave the output alone.
//! Exits 0 when everything agrees, 1 otherwise.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};
use std::process::ExitCode;

// C enums are int-sized; kept as plain c_int so no value is ever UB here.
type SdpaStatus = c_int;
const SDPA_OK: SdpaStatus = 0;
const SDPA_ERROR_INVALID_ARGUMENT: SdpaStatus = 1;
type SdpaDtype = c_int;
const SDPA_DTYPE_F32: SdpaDtype = 0;
const SDPA_DTYPE_BOOL: SdpaDtype = 3;
type SdpaCausal = c_int;
const SDPA_CAUSAL_BOTTOM_RIGHT: SdpaCausal = 2;

#[repr(C)]
struct SdpaTensor {
    data: *mut c_void,
    dtype: SdpaDtype,
    shape: [i64; 4],
    strides: [i64; 4], // elements
}

#[repr(C)]
struct SdpaAttentionArgs {
    struct_size: u32,
    q: *const SdpaTensor,
    k: *const SdpaTensor,
    v: *const SdpaTensor,
    out: *mut SdpaTensor,
    mask: *const SdpaTensor,
    lse: *mut SdpaTensor,
    scale: f32,
    causal: SdpaCausal,
    window_left: i64,
    window_right: i64,
}

#[repr(C)]
struct SdpaContextOptions {
    struct_size: u32,
    num_threads: i32,
    isa: u64,
}

#[repr(C)]
struct SdpaContext {
    _opaque: [u8; 0],
}

#[link(name = "sdpa")]
extern "C" {
    fn sdpa_context_create(
        options: *const SdpaContextOptions,
        out_context: *mut *mut SdpaContext,
    ) -> SdpaStatus;
    fn sdpa_context_destroy(context: *mut SdpaContext);
    fn sdpa_context_isa(context: *const SdpaContext) -> u64;
    fn sdpa_attention(context: *mut SdpaContext, args: *const SdpaAttentionArgs) -> SdpaStatus;
    fn sdpa_status_string(status: SdpaStatus) -> *const c_char;
    fn sdpa_last_error() -> *const c_char;
    fn sdpa_isa_name(isa: u64) -> *const c_char;
    fn sdpa_version() -> u32;
}

// Problem: batch 2, 6 query heads over 2 kv heads, 7 queries, 13 keys,
// key dim 12, value dim 5; bottom-right causal, 6 keys of left window, and a
// keep-mask shared by every batch and head (one query row fully masked).
const B: usize = 2;
const HQ: usize = 6;
const HKV: usize = 2;
const TQ: usize = 7;
const TK: usize = 13;
const DK: usize = 12;
const DV: usize = 5;
const WINDOW_LEFT: i64 = 6;
const MASKED_ROW: usize = 4;
const TOLERANCE: f64 = 1e-5; // relative to max |reference output|

fn text(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::from("(null)");
    }
    // SAFETY: the library returns NUL-terminated strings it keeps alive.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// Deterministic values in [-1, 1) (a 32-bit LCG): no crate, no rand().
struct Lcg(u32);
impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        ((self.0 >> 8) as f64 * (2.0 / 16_777_216.0) - 1.0) as f32
    }
    fn fill(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

fn contiguous(data: *mut c_void, dtype: SdpaDtype, shape: [usize; 4]) -> SdpaTensor {
    let s = shape.map(|x| x as i64);
    SdpaTensor {
        data,
        dtype,
        shape: s,
        strides: [s[1] * s[2] * s[3], s[2] * s[3], s[3], 1],
    }
}

/// The inputs, in the layouts the C call sees them.
struct Inputs {
    q_bshd: Vec<f32>, // [B, TQ, HQ, DK] in memory, read as [B, HQ, TQ, DK]
    k: Vec<f32>,      // [B, HKV, TK, DK]
    v: Vec<f32>,      // [B, HKV, TK, DV]
    keep: Vec<u8>,    // [TQ, TK], broadcast over batch and heads
}

impl Inputs {
    fn q(&self, b: usize, h: usize, i: usize, d: usize) -> f64 {
        self.q_bshd[((b * TQ + i) * HQ + h) * DK + d] as f64
    }
    fn k(&self, b: usize, h: usize, j: usize, d: usize) -> f64 {
        self.k[((b * HKV + h) * TK + j) * DK + d] as f64
    }
    fn v(&self, b: usize, h: usize, j: usize, d: usize) -> f64 {
        self.v[((b * HKV + h) * TK + j) * DV + d] as f64
    }
}

/// Naive attention from the definition in sdpa.h: returns out [B, HQ, TQ, DV]
/// and lse [B, HQ, TQ] in f64.
fn reference(x: &Inputs) -> (Vec<f64>, Vec<f64>) {
    let scale = 1.0 / (DK as f64).sqrt();
    let group = HQ / HKV;
    let mut out = vec![0.0; B * HQ * TQ * DV];
    let mut lse = vec![f64::NEG_INFINITY; B * HQ * TQ];
    for b in 0..B {
        for h in 0..HQ {
            let kv = h / group;
            for i in 0..TQ {
                let diagonal = i as i64 + TK as i64 - TQ as i64; // bottom-right
                let visible = |j: usize| {
                    let j = j as i64;
                    j <= diagonal && j >= diagonal - WINDOW_LEFT && x.keep[i * TK + j as usize] != 0
                };
                let scores: Vec<Option<f64>> = (0..TK)
                    .map(|j| {
                        visible(j).then(|| {
                            (0..DK)
                                .map(|d| x.q(b, h, i, d) * x.k(b, kv, j, d))
                                .sum::<f64>()
                                * scale
                        })
                    })
                    .collect();
                let max = scores
                    .iter()
                    .flatten()
                    .cloned()
                    .fold(f64::NEG_INFINITY, f64::max);
                if max == f64::NEG_INFINITY {
                    continue; // sees no key: output 0, lse -inf
                }
                let row = ((b * HQ + h) * TQ + i) * DV;
                let mut sum = 0.0;
                for (j, s) in scores.iter().enumerate() {
                    if let Some(s) = s {
                        let p = (s - max).exp();
                        sum += p;
                        for e in 0..DV {
                            out[row + e] += p * x.v(b, kv, j, e);
                        }
                    }
                }
                for e in 0..DV {
                    out[row + e] /= sum;
                }
                lse[(b * HQ + h) * TQ + i] = max + sum.ln();
            }
        }
    }
    (out, lse)
}

/// Compares one call's result with the reference; returns the failures.
fn compare(out: &[f32], lse: &[f32], ref_out: &[f64], ref_lse: &[f64]) -> Vec<String> {
    let mut failures = Vec::new();
    let out_scale = ref_out.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let mut max_error = 0.0f64;
    for (n, (&got, &want)) in out.iter().zip(ref_out).enumerate() {
        let error = (got as f64 - want).abs();
        max_error = max_error.max(error);
        // Written so that NaN fails too.
        if !(error <= TOLERANCE * out_scale) {
            failures.push(format!("out[{n}] = {got}, expected {want}"));
        }
    }
    for (n, (&got, &want)) in lse.iter().zip(ref_lse).enumerate() {
        let ok = if want == f64::NEG_INFINITY {
            got == f32::NEG_INFINITY && out[n * DV..(n + 1) * DV].iter().all(|&o| o == 0.0)
        } else {
            (got as f64 - want).abs() <= TOLERANCE * want.abs().max(1.0)
        };
        if !ok {
            failures.push(format!("lse[{n}] = {got}, expected {want}"));
        }
    }
    let blind_rows = ref_lse.iter().filter(|x| **x == f64::NEG_INFINITY).count();
    if blind_rows != B * HQ {
        failures.push(format!(
            "the test meant one fully masked row per head, got {blind_rows}"
        ));
    }
    println!(
        "max |out - reference| = {max_error:.3e} (bound {:.3e})",
        TOLERANCE * out_scale
    );
    failures
}

fn main() -> ExitCode {
    let mut rng = Lcg(20240611);
    let mut inputs = Inputs {
        q_bshd: rng.fill(B * TQ * HQ * DK),
        k: rng.fill(B * HKV * TK * DK),
        v: rng.fill(B * HKV * TK * DV),
        keep: (0..TQ * TK).map(|n| u8::from(n % 5 != 2)).collect(),
    };
    inputs.keep[MASKED_ROW * TK..(MASKED_ROW + 1) * TK].fill(0);
    let (ref_out, ref_lse) = reference(&inputs);

    // q: BSHD memory described as [B, HQ, TQ, DK] by its element strides.
    let q = SdpaTensor {
        data: inputs.q_bshd.as_mut_ptr().cast(),
        dtype: SDPA_DTYPE_F32,
        shape: [B as i64, HQ as i64, TQ as i64, DK as i64],
        strides: [(TQ * HQ * DK) as i64, DK as i64, (HQ * DK) as i64, 1],
    };
    let k = contiguous(
        inputs.k.as_mut_ptr().cast(),
        SDPA_DTYPE_F32,
        [B, HKV, TK, DK],
    );
    let v = contiguous(
        inputs.v.as_mut_ptr().cast(),
        SDPA_DTYPE_F32,
        [B, HKV, TK, DV],
    );
    // Mask: one [TQ, TK] plane for every batch and head (stride 0).
    let mask = SdpaTensor {
        data: inputs.keep.as_mut_ptr().cast(),
        dtype: SDPA_DTYPE_BOOL,
        shape: [B as i64, HQ as i64, TQ as i64, TK as i64],
        strides: [0, 0, TK as i64, 1],
    };
    let mut out = vec![f32::NAN; B * HQ * TQ * DV];
    let mut lse = vec![f32::NAN; B * HQ * TQ];
    let mut out_t = contiguous(out.as_mut_ptr().cast(), SDPA_DTYPE_F32, [B, HQ, TQ, DV]);
    let mut lse_t = contiguous(lse.as_mut_ptr().cast(), SDPA_DTYPE_F32, [B, HQ, TQ, 1]);

    let options = SdpaContextOptions {
        struct_size: std::mem::size_of::<SdpaContextOptions>() as u32,
        num_threads: 2,
        isa: 0,
    };
    let mut context: *mut SdpaContext = std::ptr::null_mut();
    // SAFETY: options and context outlive the call.
    let status = unsafe { sdpa_context_create(&options, &mut context) };
    if status != SDPA_OK {
        eprintln!(
            "sdpa_context_create: {}: {}",
            text(unsafe { sdpa_status_string(status) }),
            text(unsafe { sdpa_last_error() })
        );
        return ExitCode::FAILURE;
    }

    let mut args = SdpaAttentionArgs {
        struct_size: std::mem::size_of::<SdpaAttentionArgs>() as u32,
        q: &q,
        k: &k,
        v: &v,
        out: &mut out_t,
        mask: &mask,
        lse: &mut lse_t,
        scale: 0.0, // 1/sqrt(DK)
        causal: SDPA_CAUSAL_BOTTOM_RIGHT,
        window_left: WINDOW_LEFT,
        window_right: -1,
    };
    // SAFETY: every tensor points into a live Vec of the size its shape and
    // strides describe; out and lse overlap nothing else.
    let status = unsafe { sdpa_attention(context, &args) };
    let mut failures = Vec::new();
    if status != SDPA_OK {
        failures.push(format!(
            "sdpa_attention: {}: {}",
            text(unsafe { sdpa_status_string(status) }),
            text(unsafe { sdpa_last_error() })
        ));
    } else {
        failures.extend(compare(&out, &lse, &ref_out, &ref_lse));
    }

    // A bad call: v described with a different key count than k.
    let bad_v = contiguous(
        inputs.v.as_mut_ptr().cast(),
        SDPA_DTYPE_F32,
        [B, HKV, TK - 1, DV],
    );
    args.v = &bad_v;
    out.fill(-7.0);
    let status = unsafe { sdpa_attention(context, &args) };
    let message = text(unsafe { sdpa_last_error() });
    if status != SDPA_ERROR_INVALID_ARGUMENT || !message.contains("v->shape[2]") {
        failures.push(format!(
            "bad v: expected invalid argument naming v->shape[2], got status {status}: {message:?}"
        ));
    }
    if out.iter().any(|&x| x != -7.0) {
        failures.push(String::from("a refused call wrote to out"));
    }
    println!(
        "refused call: {}: {message}",
        text(unsafe { sdpa_status_string(status) })
    );

    let version = unsafe { sdpa_version() };
    println!(
        "sdpa {}.{}.{} on {}",
        version >> 16,
        (version >> 8) & 255,
        version & 255,
        text(unsafe { sdpa_isa_name(sdpa_context_isa(context)) })
    );
    unsafe { sdpa_context_destroy(context) };
    if failures.is_empty() {
        println!("OK");
        ExitCode::SUCCESS
    } else {
        for failure in failures.iter().take(20) {
            eprintln!("FAILED: {failure}");
        }
        ExitCode::FAILURE
    }
}
