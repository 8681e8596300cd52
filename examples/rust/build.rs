// Tells rustc where libsdpa.so is: $SDPA_LIB_DIR (CMake passes the folder of
// its sdpa_shared target), else the system search path. The rpath lets the
// binary run from the build tree without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rerun-if-env-changed=SDPA_LIB_DIR");
    if let Ok(dir) = std::env::var("SDPA_LIB_DIR") {
        println!("cargo:rustc-link-search=native={dir}");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
