//! The conformance suite on a third-party backend (`examples/third_party_backend.rs`), built
//! from pool-core's public `Backend` + `Worker` alone (a `BackendPool`), run from `tests/`.

#[path = "../examples/third_party_backend.rs"]
mod third_party_backend;

#[test]
fn third_party_backend_passes_conformance() {
    let report = third_party_backend::conformance();
    println!("{report}");
    report.assert_passed();
}
