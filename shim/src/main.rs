//! `berth-shim start --id <id> --bundle <dir> --state <dir>`: see
//! [`berth_shim::daemon`] for what the foreground process prints and returns.
fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = match berth_contract::shim_start::StartConfig::parse(&args) {
        Ok(config) => berth_shim::daemon::run(config),
        Err(e) => {
            eprintln!("{e}");
            2
        }
    };
    std::process::exit(code);
}
