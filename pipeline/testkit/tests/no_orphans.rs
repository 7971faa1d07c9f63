//! Nothing the harness starts outlives it: npm's `anvil` is a Node wrapper that starts
//! the native binary, and killing only the wrapper left the node running (issue 13,
//! finding 7: 8 orphans after one `scripts/test` and one `scripts/demo`).

use std::time::{Duration, Instant};

use herald_testkit::{group_members, LocalAnvil, LocalNats, LocalRedis};

/// Waits until `pgid` has no live process, or returns the ones left after 10 s.
fn wait_gone(pgid: u32) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = group_members(pgid);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn no_child_of_a_local_server_outlives_it() {
    let anvil = LocalAnvil::start().expect("anvil (scripts/install-deps)");
    let pgid = anvil.process_group();
    assert!(!group_members(pgid).is_empty(), "the node runs in its own process group");
    drop(anvil);
    assert_eq!(wait_gone(pgid), Vec::<u32>::new(), "processes of anvil's group still alive");

    let (nats, redis) = (LocalNats::start().unwrap(), LocalRedis::start().unwrap());
    let groups = [nats.process_group(), redis.process_group()];
    drop((nats, redis));
    for pgid in groups {
        assert_eq!(wait_gone(pgid), Vec::<u32>::new());
    }
}
