use super::*;

const MINIMAL: &str = "name = \"t\"\nduration = \"5s\"\n";

fn err(text: &str) -> String {
    Plan::parse(text, "p.toml").unwrap_err().to_string()
}

#[test]
fn network_and_clock_faults_take_only_their_parameters() {
    let ok = format!(
        "{MINIMAL}[[faults]]\nkind = \"partition\"\ntopology = \"groups\"\ngroups = [[1], [2, 3]]\nat = [\"1s\"]\n\
         [[faults]]\nkind = \"packet\"\ntarget = \"all\"\nloss = 0.1\ndelay = \"20ms\"\nevery = \"2s\"\n\
         [[faults]]\nkind = \"clock-strobe\"\noffset = \"-2s\"\nperiod = \"50ms\"\nevery = \"2s\"\n\
         [[faults]]\nkind = \"clock-drift\"\nclock_rate = 2.0\nevery = \"2s\"\n"
    );
    let plan = Plan::parse(&ok, "p.toml").unwrap();
    assert!(plan.needs_network() && plan.needs_clock_shim());
    let FaultSpec::Clock(crate::faults::clock::ClockFault::Strobe(s)) = &plan.faults[2].spec else {
        panic!("a strobe: {:?}", plan.faults[2]);
    };
    assert_eq!(s.offset.as_nanos_i64(), -2_000_000_000);
    let e = err(&format!(
        "{MINIMAL}[[faults]]\nkind = \"kill\"\nloss = 0.5\nevery = \"1s\"\n"
    ));
    assert!(
        e.starts_with("p.toml: line 3, faults[0]: unknown field `loss`"),
        "{e}"
    );
    let e = err(&format!(
        "{MINIMAL}[[faults]]\nkind = \"partition\"\ntopology = \"majorities-ring\"\nevery = \"1s\"\n"
    ));
    assert!(e.contains("majorities-ring needs at least 5 nodes"), "{e}");
    let e = err(&format!(
        "{MINIMAL}\n[[faults]]\nkind = \"clock-bump\"\noffset = \"sideways\"\nevery = \"1s\"\n"
    ));
    assert!(e.contains("line 4") && e.contains("signed duration"), "{e}");
}

#[test]
fn a_minimal_plan_gets_defaults() {
    let plan = Plan::parse(MINIMAL, "t.toml").unwrap();
    assert_eq!(plan.cluster.nodes, 3);
    assert_eq!(plan.duration, Dur(Duration::from_secs(5)));
    assert_eq!(plan.workload.model, Model::CasRegister);
    // Clients behave like real ones unless the plan says otherwise: reads spread over the nodes, ops retried
    // inside their deadline, a second client reading each acknowledged write.
    assert_eq!(plan.workload.reads_from, ReadsFrom::AnyNode);
    assert_eq!(plan.workload.read_after_ack, ReadAfterAck::OtherClient);
    assert_eq!(plan.workload.attempt_deadline(), Duration::from_millis(250));
}

#[test]
fn the_attempt_deadline_is_the_plans_or_a_quarter_of_the_ops() {
    let workload = |extra: &str| {
        Plan::parse(&format!("{MINIMAL}[workload]\n{extra}"), "t.toml")
            .unwrap()
            .workload
    };
    let w = workload("request_timeout = \"2s\"\n");
    assert_eq!(w.attempt_deadline(), Duration::from_millis(500));
    let w = workload("request_timeout = \"2s\"\nattempt_timeout = \"2s\"\n");
    assert_eq!(
        w.attempt_deadline(),
        Duration::from_secs(2),
        "one attempt per op"
    );
    let w = workload("request_timeout = \"2ms\"\n");
    assert_eq!(
        w.attempt_deadline(),
        Duration::from_millis(1),
        "never below 1 ms"
    );
    let w = workload("reads_from = \"leader\"\nread_after_ack = \"off\"\n");
    assert_eq!(
        (w.reads_from, w.read_after_ack),
        (ReadsFrom::Leader, ReadAfterAck::Off)
    );
}

#[test]
fn unknown_keys_are_named_with_their_line() {
    let e = err(&format!("{MINIMAL}[cluster]\nnodez = 3\n"));
    assert!(e.starts_with("p.toml: line 4, column 1"), "{e}");
    assert!(e.contains("unknown field `nodez`"), "{e}");
}

#[test]
fn bad_durations_say_what_was_expected() {
    let e = err("name = \"t\"\nduration = \"5 parsecs\"\n");
    assert!(
        e.contains("line 2") && e.contains("expected a duration like"),
        "{e}"
    );
}

#[test]
fn cross_field_errors_name_the_field() {
    let e = err(&format!(
        "{MINIMAL}[[faults]]\nkind = \"kill\"\ntarget = \"n7\"\nevery = \"1s\"\n"
    ));
    assert_eq!(
        e,
        "p.toml: faults[0].target: n7 does not exist: the cluster has 3 nodes"
    );
    let e = err(&format!("{MINIMAL}[[faults]]\nkind = \"pause\"\n"));
    assert!(e.contains("faults[0].at: give one of"), "{e}");
    let e = err(&format!(
        "{MINIMAL}[[faults]]\nkind = \"melt\"\nevery = \"1s\"\n"
    ));
    assert!(e.contains("unknown fault kind \"melt\""), "{e}");
}

#[test]
fn absurd_numbers_are_refused_at_parse_time() {
    // Issue 12 items 2, 6 and 7: these used to panic, allocate gigabytes or pass silently.
    for (body, needle) in [
        ("name = \"t\"\nduration = \"18446744073709551615s\"\n", "duration"),
        ("name = \"t\"\nduration = \"300000000000y\"\n", "duration"),
        ("name = \"t\"\nduration = \"400days\"\n", "longest duration"),
        (
            "name = \"t\"\nduration = \"5s\"\n[workload]\nrate = 1e-300\n",
            "workload.rate",
        ),
        (
            "name = \"t\"\nduration = \"5s\"\n[workload]\nmix = { read = inf }\n",
            "workload.mix",
        ),
        (
            "name = \"t\"\nduration = \"5s\"\n[workload]\nmix = { read = nan }\n",
            "workload.mix",
        ),
        (
            "name = \"t\"\nduration = \"5s\"\n[workload]\nkeys = 1000000000\n",
            "workload.keys",
        ),
        (
            "name = \"t\"\nduration = \"5s\"\n[[faults]]\nkind = \"packet\"\ndelay = \"100000y\"\nevery = \"1s\"\n",
            "longest duration",
        ),
        (
            "name = \"t\"\nduration = \"5s\"\n[[faults]]\nkind = \"packet\"\ndelay = \"61s\"\nevery = \"1s\"\n",
            "relay cannot",
        ),
        (
            "name = \"t\"\nduration = \"5s\"\n[[faults]]\nkind = \"clock-drift\"\nclock_rate = inf\nevery = \"1s\"\n",
            "clock_rate",
        ),
    ] {
        let e = err(body);
        assert!(e.contains(needle), "{body}: {e}");
    }
}

#[test]
fn certificates_must_outlive_the_run() {
    // Issue 12 item 3: used to run and fail as "did not recover" when the certificates expired mid-run.
    let e = err("name = \"t\"\nduration = \"5s\"\n[cluster]\ncert_validity = \"0s\"\n");
    assert!(
        e.contains("cluster.cert_validity") && e.contains("expire"),
        "{e}"
    );
}

#[test]
fn fixed_faults_past_the_phase_are_refused_not_clipped() {
    // Issue 12 item 4.
    let e = err(&format!(
        "{MINIMAL}[[faults]]\nkind = \"kill\"\nat = [\"4s\"]\nduration = \"3s\"\n"
    ));
    assert!(
        e.contains("faults[0].duration") && e.contains("never clipped"),
        "{e}"
    );
}

#[test]
fn plans_round_trip_through_the_manifest_form() {
    let text = format!(
        "{MINIMAL}[[faults]]\nkind = \"packet\"\nname = \"lossy\"\ntarget = \"all\"\nloss = 0.1\nevery = \"2s\"\n\
         [[faults]]\nkind = \"kill\"\ntarget = \"leader\"\nat = [\"1s\"]\n"
    );
    let plan = Plan::parse(&text, "p.toml").unwrap();
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["faults"][0]["kind"], "packet");
    assert_eq!(json["faults"][0]["loss"], 0.1);
    assert_eq!(json["faults"][0]["name"], "lossy");
    assert_eq!(json["faults"][1]["kind"], "kill");
    assert_eq!(json["faults"][1]["target"], "leader");
    assert_eq!(plan.faults[0].label(), "lossy");
    assert_eq!(plan.faults[1].label(), "kill");
}

#[test]
fn etcd_refuses_what_it_cannot_honour() {
    let clock = "name = \"t\"\nduration = \"5s\"\n[cluster]\ntarget = \"etcd\"\n[[faults]]\nkind = \"clock-bump\"\noffset = \"+1s\"\nevery = \"1s\"\n";
    let e = err(clock);
    assert!(e.contains("vDSO"), "{e}");
    let partition = "name = \"t\"\nduration = \"5s\"\n[cluster]\ntarget = \"etcd\"\n[[faults]]\nkind = \"partition\"\ntopology = \"isolate\"\nevery = \"1s\"\n";
    let e = err(partition);
    assert!(e.contains("netns"), "{e}");
    let kill = "name = \"t\"\nduration = \"5s\"\n[cluster]\ntarget = \"etcd\"\n[[faults]]\nkind = \"kill\"\nevery = \"1s\"\n";
    Plan::parse(kill, "p.toml").unwrap();
}

#[test]
fn composed_faults_name_faults_that_exist_once_and_never_loop() {
    let ok = format!(
        "{MINIMAL}[[faults]]\nname = \"cut\"\nkind = \"partition\"\ntopology = \"isolate\"\ntarget = \"leader\"\nat = [\"1s\"]\n\
         [[faults]]\nkind = \"clock-drift\"\nclock_rate = 0.5\nsame_as = \"cut\"\nwhen = \"cut\"\n\
         [[faults]]\nkind = \"packet\"\ntarget = \"lagging\"\nloss = 0.2\ndelay = \"5ms\"\nafter = \"cut\"\nwait = \"200ms\"\n"
    );
    let plan = Plan::parse(&ok, "p.toml").unwrap();
    assert_eq!(plan.faults[1].same_as.as_deref(), Some("cut"));
    let t = plan.faults[2].trigger.as_ref().unwrap();
    assert_eq!(
        (&t.source, t.wait.0),
        (
            &TriggerSource::Fault {
                name: "cut".into(),
                edge: Edge::End
            },
            Duration::from_millis(200)
        )
    );
    let json = serde_json::to_value(&plan.faults[2]).unwrap();
    assert_eq!(
        (
            json["after"].as_str(),
            json["wait"].as_str(),
            json["delay"].as_str()
        ),
        (Some("cut"), Some("200ms"), Some("5ms"))
    );

    let missing = err(&format!("{MINIMAL}[[faults]]\nkind = \"kill\"\nat = [\"1s\"]\n[[faults]]\nkind = \"pause\"\nafter = \"cutt\"\n"));
    assert!(
        missing.contains(
            "faults[1].after: no fault is called \"cutt\"; the faults are called kill, pause"
        ),
        "{missing}"
    );
    let ambiguous = err(&format!("{MINIMAL}[[faults]]\nkind = \"kill\"\nat = [\"1s\"]\n[[faults]]\nkind = \"kill\"\nat = [\"2s\"]\n[[faults]]\nkind = \"pause\"\nsame_as = \"kill\"\nat = [\"3s\"]\n"));
    assert!(
        ambiguous.contains("faults[2].same_as: \"kill\" is ambiguous"),
        "{ambiguous}"
    );
    let looped = err(&format!("{MINIMAL}[[faults]]\nname = \"a\"\nkind = \"kill\"\nafter = \"b\"\n[[faults]]\nname = \"b\"\nkind = \"pause\"\nwhen = \"a\"\n"));
    assert!(
        looped.contains("faults[0].after: \"b\" is started, directly or not, by this fault"),
        "{looped}"
    );
    let itself = err(&format!(
        "{MINIMAL}[[faults]]\nname = \"a\"\nkind = \"kill\"\nsame_as = \"a\"\nat = [\"1s\"]\n"
    ));
    assert!(itself.contains("\"a\" is this fault itself"), "{itself}");
    let both = err(&format!(
        "{MINIMAL}[[faults]]\nkind = \"kill\"\nat = [\"1s\"]\nevery = \"2s\"\n"
    ));
    assert!(both.contains("give one of `at`"), "{both}");
    let two_targets = err(&format!("{MINIMAL}[[faults]]\nkind = \"kill\"\nat = [\"1s\"]\n[[faults]]\nkind = \"pause\"\ntarget = \"n1\"\nsame_as = \"kill\"\nat = [\"2s\"]\n"));
    assert!(
        two_targets.contains("either `target` or `same_as`"),
        "{two_targets}"
    );
    let stray_wait = err(&format!(
        "{MINIMAL}[[faults]]\nkind = \"kill\"\nat = [\"1s\"]\nwait = \"1s\"\n"
    ));
    assert!(
        stray_wait.contains("`wait` only goes with `when`, `after` or `on`"),
        "{stray_wait}"
    );
    let too_long = err(&format!("{MINIMAL}[[faults]]\nkind = \"kill\"\nat = [\"1s\"]\n[[faults]]\nkind = \"pause\"\nafter = \"kill\"\nwait = \"3s\"\nduration = \"3s\"\n"));
    assert!(
        too_long.contains("faults[1].wait: wait 3s plus duration 3s do not fit"),
        "{too_long}"
    );
}

#[test]
fn client_link_faults_need_kernel_rules_on_local_hosts() {
    let fault = "[[faults]]\nkind = \"packet\"\ntarget = \"leader\"\nloss = 1.0\nlinks = \"answers\"\nevery = \"2s\"\n\
                 [[faults]]\nkind = \"partition\"\ntopology = \"isolate\"\ntarget = \"leader\"\nclients = \"follow\"\nevery = \"2s\"\n";
    let e = err(&format!("{MINIMAL}{fault}"));
    assert!(
        e.contains("faults[0].links: faults on client links need cluster.network = \"nftables\""),
        "{e}"
    );
    let plan = Plan::parse(
        &format!("{MINIMAL}[cluster]\nnetwork = \"nftables\"\n{fault}"),
        "p.toml",
    )
    .unwrap();
    assert!(plan.uses_client_links());
    let e = err(&format!("{MINIMAL}[cluster]\nnetwork = \"nftables\"\n[[faults]]\nkind = \"partition\"\ntopology = \"isolate\"\nclients = \"everyone\"\nevery = \"2s\"\n"));
    assert!(e.contains("unknown variant `everyone`"), "{e}");
}

#[test]
fn disk_faults_parse_and_stay_off_ssh_hosts() {
    let ok = format!(
        "{MINIMAL}[[faults]]\nkind = \"lose-unsynced\"\ntarget = \"all\"\nevery = \"2s\"\n\
         [[faults]]\nkind = \"slow-fsync\"\nfsync_delay = \"50ms\"\nevery = \"2s\"\n\
         [[faults]]\nkind = \"corrupt\"\nfile = \"wal/*\"\nevery = \"2s\"\n"
    );
    let plan = Plan::parse(&ok, "p.toml").unwrap();
    assert!(plan.uses(Family::Disk) && !plan.needs_network());
    assert_eq!(
        FaultSpec::describe(&plan.faults[1].spec),
        "  fsync-delay 50ms"
    );
    let e = err(&format!(
        "{MINIMAL}[[faults]]\nkind = \"disk-full\"\nfile = \"x\"\nevery = \"1s\"\n"
    ));
    assert!(e.contains("unknown field `file`"), "{e}");
    let ssh = format!(
        "{MINIMAL}[cluster]\nhosts = \"ssh\"\n[[cluster.ssh_hosts]]\naddress = \"198.18.0.11\"\nuser = \"root\"\n\
         key = \"/k\"\n[[faults]]\nkind = \"lose-unsynced\"\nevery = \"1s\"\n"
    );
    let e = err(&ssh);
    assert!(
        e.contains("faults[0].kind") && e.contains("not on SSH hosts"),
        "{e}"
    );
}

#[test]
fn membership_faults_are_refused_where_they_cannot_run() {
    let ok = format!(
        "{MINIMAL}[cluster]\nnetwork = \"nftables\"\n[[faults]]\nkind = \"replace\"\ntarget = \"leader\"\nat = [\"1s\"]\n\
         [[faults]]\nkind = \"partition\"\ntopology = \"isolate\"\nevery = \"2s\"\n"
    );
    let plan = Plan::parse(&ok, "p.toml").unwrap();
    assert!(plan.uses(crate::faults::Family::Membership));
    // The relay mesh cannot give nodes that join links of their own.
    let e = err(&ok.replace("network = \"nftables\"", "network = \"relay\""));
    assert!(
        e.contains("faults[0].kind") && e.contains("nftables"),
        "{e}"
    );
    let e = err(&ok.replace("[cluster]\n", "[cluster]\ntarget = \"etcd\"\n"));
    assert!(e.contains("etcd"), "{e}");
    let e = err(&ok.replace("[cluster]\n", "[cluster]\nhosts = \"netns\"\n"));
    assert!(e.contains("cluster.hosts = \"local\" only"), "{e}");
    let e = err(&format!(
        "{MINIMAL}[[faults]]\nkind = \"remove\"\ntarget = \"majority\"\nat = [\"1s\"]\n"
    ));
    assert!(
        e.contains("faults[0].target") && e.contains("one node at a time"),
        "{e}"
    );
    let e = err(&format!(
        "{MINIMAL}[[faults]]\nkind = \"remove\"\nmin_members = 5\nat = [\"1s\"]\n"
    ));
    assert!(e.contains("faults[0].min_members"), "{e}");
    let e = err(&format!(
        "{MINIMAL}[[faults]]\nkind = \"add\"\nloss = 0.1\nat = [\"1s\"]\n"
    ));
    assert!(e.contains("loss"), "{e}");
    // Nodes that join get a disk layer and the clock shim: both families combine with membership faults.
    let disk = format!("{ok}[[faults]]\nkind = \"slow-fsync\"\nevery = \"2s\"\n");
    assert!(Plan::parse(&disk, "p.toml").is_ok());
    let clock = format!("{ok}[[faults]]\nkind = \"clock-bump\"\noffset = \"1s\"\nevery = \"2s\"\n");
    assert!(Plan::parse(&clock, "p.toml").is_ok());
}

#[test]
fn faults_on_cluster_events_parse_print_and_stay_off_the_timeline() {
    let text = format!(
        "{MINIMAL}[[faults]]\nname = \"restart-voter\"\nkind = \"kill\"\ntarget = \"follower\"\non = \"new-leader\"\nwait = \"2ms\"\nduration = \"50ms\"\n\
         [[faults]]\nname = \"then\"\nkind = \"pause\"\nsame_as = \"restart-voter\"\nafter = \"restart-voter\"\n\
         [[faults]]\nkind = \"kill\"\nat = [\"1s\"]\n"
    );
    let plan = Plan::parse(&text, "p.toml").unwrap();
    let t = plan.faults[0].trigger.as_ref().unwrap();
    assert_eq!(
        (&t.source, t.wait.0),
        (
            &TriggerSource::Cluster(ClusterEvent::NewLeader),
            Duration::from_millis(2)
        )
    );
    assert!(plan.watches_cluster());
    assert_eq!(
        [0, 1, 2].map(|i| plan.reacts_to_cluster(i)),
        [true, true, false],
        "a fault after a reactive one reacts too"
    );
    let json = serde_json::to_value(&plan.faults[0]).unwrap();
    assert_eq!(
        (json["on"].as_str(), json["wait"].as_str()),
        (Some("new-leader"), Some("2ms"))
    );
    let timeline = crate::schedule::schedule(&plan, 1);
    assert_eq!(timeline.len(), 1, "only the fixed kill: {timeline:?}");
    let text = crate::schedule::render(&plan, 1, &timeline);
    assert!(
        text.contains("on new-leader + 2ms: restart-voter")
            && text.contains("after restart-voter: then"),
        "{text}"
    );
    assert_eq!(
        plan.watch_interval.0,
        Duration::from_millis(5),
        "the default"
    );
    let slow = err(&format!("watch_interval = \"2s\"\n{MINIMAL}"));
    assert!(
        slow.contains("watch_interval: expected 1ms to 1s, got 2s"),
        "{slow}"
    );
    let plain = Plan::parse(
        &format!("{MINIMAL}[[faults]]\nkind = \"kill\"\nat = [\"1s\"]\n"),
        "p.toml",
    )
    .unwrap();
    assert!(!plain.watches_cluster());

    let unknown = err(&format!(
        "{MINIMAL}[[faults]]\nkind = \"kill\"\non = \"leader-lost\"\n"
    ));
    assert!(
        unknown.contains("faults[0]")
            && unknown.contains("new-leader")
            && unknown.contains("new-term"),
        "{unknown}"
    );
    let on_term = Plan::parse(
        &format!("{MINIMAL}[[faults]]\nkind = \"kill\"\ntarget = \"follower\"\non = \"new-term\"\nduration = \"30ms\"\n"),
        "p.toml",
    )
    .unwrap();
    assert_eq!(
        on_term.faults[0].trigger.as_ref().map(|t| &t.source),
        Some(&TriggerSource::Cluster(ClusterEvent::NewTerm))
    );
    assert!(on_term.watches_cluster());
    let observed = Plan::parse(
        &format!("{MINIMAL}[[faults]]\nkind = \"kill\"\ntarget = \"observed\"\non = \"new-term\"\nduration = \"30ms\"\n"),
        "p.toml",
    )
    .unwrap();
    assert_eq!(observed.faults[0].target, Target::Observed);
    assert_eq!(
        serde_json::to_value(&observed.faults[0]).unwrap()["target"],
        "observed"
    );
    for without_event in [
        "[[faults]]\nkind = \"kill\"\ntarget = \"observed\"\nat = [\"1s\"]\n",
        "[[faults]]\nname = \"a\"\nkind = \"kill\"\non = \"new-term\"\nduration = \"30ms\"\n\
         [[faults]]\nkind = \"pause\"\ntarget = \"observed\"\nafter = \"a\"\n",
    ] {
        let e = err(&format!("{MINIMAL}{without_event}"));
        assert!(
            e.contains(
                ".target: \"observed\" is the node a cluster event is about, so it needs `on`"
            ),
            "{e}"
        );
    }
    let two = err(&format!(
        "{MINIMAL}[[faults]]\nkind = \"kill\"\nat = [\"1s\"]\n[[faults]]\nkind = \"pause\"\non = \"new-leader\"\nafter = \"kill\"\n"
    ));
    assert!(two.contains("not several"), "{two}");
    let too_long = err(&format!(
        "{MINIMAL}[[faults]]\nkind = \"kill\"\non = \"new-leader\"\nduration = \"6s\"\n"
    ));
    assert!(
        too_long.contains("faults[0].on: wait 0s plus duration 6s"),
        "{too_long}"
    );
}
