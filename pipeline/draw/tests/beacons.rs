//! The real drand beacons of the fixtures verify; altered ones do not.

use herald_draw::beacon::{self, Beacon, BeaconError, ChainInfo, QUICKNET};
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("fixtures/drand_vectors.json")).unwrap()
}

fn chain(v: &Value, name: &str) -> ChainInfo {
    let c = &v["chains"][name];
    match c.get("chain_info_v1") {
        Some(info) => serde_json::from_value(info.clone()).unwrap(),
        None => serde_json::from_str(c["chain_info_v1_json"].as_str().unwrap()).unwrap(),
    }
}

fn beacons(v: &Value, name: &str) -> Vec<Beacon> {
    serde_json::from_value(v["beacons"][name].clone()).unwrap()
}

#[test]
fn quicknet_is_pinned_as_published() {
    let v = vectors();
    assert_eq!(chain(&v, "quicknet"), QUICKNET.info());
    let v2: ChainInfo = serde_json::from_str(v["chains"]["quicknet"]["chain_info_v2_json"].as_str().unwrap()).unwrap();
    assert_eq!(v2, QUICKNET.info());
}

#[test]
fn every_real_beacon_verifies() {
    let v = vectors();
    let mut checked = 0;
    for name in ["quicknet", "default"] {
        let info = chain(&v, name);
        for b in beacons(&v, name) {
            if name == "default" && b.previous_signature.is_none() {
                // round 1337's source gives no previous signature: only the randomness
                // derivation can be checked, and the signature alone must not pass
                assert_eq!(
                    beacon::verify(&info, &b),
                    Err(BeaconError::Malformed("previous_signature missing".into()))
                );
                continue;
            }
            beacon::verify_round(&info, b.round, &b).unwrap_or_else(|e| panic!("{name} round {}: {e}", b.round));
            checked += 1;
        }
    }
    assert_eq!(checked, 4, "quicknet 123 and default 1, 2, 72785");
}

#[test]
fn altered_beacons_are_refused() {
    let v = vectors();
    let q = chain(&v, "quicknet");
    let good = beacons(&v, "quicknet").remove(0);

    // another round number under the same signature
    let mut relabelled = good.clone();
    relabelled.round += 1;
    assert_eq!(beacon::verify(&q, &relabelled), Err(BeaconError::Signature));
    // asked for one round, served another
    assert!(matches!(
        beacon::verify_round(&q, 124, &good),
        Err(BeaconError::WrongRound { wanted: 124, got: 123 })
    ));
    // randomness that is not SHA-256 of the signature
    let mut randomness = good.clone();
    randomness.randomness = "00".repeat(32);
    assert_eq!(beacon::verify(&q, &randomness), Err(BeaconError::Randomness));
    // another valid-looking signature (the default chain's, on G2) with its own randomness
    let default = chain(&v, "default");
    let other = beacons(&v, "default").remove(0);
    let mut foreign = good.clone();
    foreign.signature = other.signature.clone();
    foreign.randomness = other.randomness.clone();
    assert_eq!(beacon::verify(&q, &foreign), Err(BeaconError::Signature));
    // the right beacon against the wrong chain
    assert!(beacon::verify(&default, &good).is_err());
    // a chained beacon with a corrupted previous signature
    let mut chained = beacons(&v, "default").remove(1);
    chained.previous_signature = Some(chained.previous_signature.unwrap().replacen('8', "9", 1));
    assert_eq!(beacon::verify(&default, &chained), Err(BeaconError::Signature));
    // one flipped bit of the signature (randomness recomputed so only the BLS check can catch it)
    let mut flipped = good.clone();
    let mut sig = hex::decode(&flipped.signature).unwrap();
    sig[20] ^= 1;
    flipped.signature = hex::encode(&sig);
    use sha2::Digest;
    flipped.randomness = hex::encode(sha2::Sha256::digest(&sig));
    assert_eq!(beacon::verify(&q, &flipped), Err(BeaconError::Signature));
}
