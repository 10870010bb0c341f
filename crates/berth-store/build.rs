// `sqlx::migrate!` embeds the migrations at compile time: rebuild when one is added or changed
// (cargo would otherwise keep a binary without a new migration).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
