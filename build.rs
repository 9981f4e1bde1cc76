// `sqlx::migrate!` embeds the migration files at compile time; without this a
// new migration would not rebuild the crate (and a cached build would miss it).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
