// `sqlx::migrate!` embeds finance's migrations at compile time, but cargo does
// not know it reads that directory: without this, a new migration file is
// not in the binary until something else changes in this crate.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
