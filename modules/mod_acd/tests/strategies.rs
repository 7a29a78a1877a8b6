//! Targeted tests: one per strategy, per skill rule, per agent-state rule, per statistic.

use mod_acd::{
    Acd, AcdConfig, AcdError, AgentConfig, AgentId, AgentState, Channel, Input, Interaction,
    InteractionId, Output, OverflowTarget, QueueConfig, QueueEvent, SkillRequirement, SkillRule,
    Strategy, Tier,
};

fn agent(id: u32, queue: &str, level: u32, position: u32) -> AgentConfig {
    AgentConfig {
        tiers: vec![Tier::new(queue, level, position)],
        ..AgentConfig::new(AgentId(id))
    }
}

fn acd_with(queue: QueueConfig, agents: Vec<AgentConfig>) -> Acd {
    let ids: Vec<AgentId> = agents.iter().map(|a| a.id).collect();
    let mut acd = Acd::new(
        AcdConfig {
            queues: vec![queue],
            agents,
        },
        42,
    )
    .unwrap();
    for id in ids {
        acd.handle_input(0, Input::Login(id)).unwrap();
    }
    drain(&mut acd);
    acd
}

fn drain(acd: &mut Acd) -> Vec<Output> {
    std::iter::from_fn(|| acd.poll_output()).collect()
}

fn offers(outputs: &[Output]) -> Vec<(InteractionId, AgentId)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Offer {
                interaction, agent, ..
            } => Some((*interaction, *agent)),
            _ => None,
        })
        .collect()
}

fn call(id: u64) -> Interaction {
    Interaction::new(InteractionId(id), Channel::Voice, "q", "caller")
}

/// Arrives, checks who is offered, answers and hangs up at once: returns the agent.
fn route_one(acd: &mut Acd, now: u64, id: u64) -> AgentId {
    acd.handle_input(now, Input::Arrive(call(id))).unwrap();
    let got = offers(&drain(acd));
    assert_eq!(got.len(), 1, "one offer expected: {got:?}");
    let agent = got[0].1;
    acd.handle_input(
        now + 1,
        Input::OfferAnswered {
            interaction: InteractionId(id),
            agent,
        },
    )
    .unwrap();
    acd.handle_input(now + 2, Input::ContactEnded(InteractionId(id)))
        .unwrap();
    drain(acd);
    acd.check_invariants(now + 2).unwrap();
    agent
}

fn queue(strategy: Strategy) -> QueueConfig {
    QueueConfig {
        strategy,
        ..QueueConfig::new("q")
    }
}

fn three(strategy: Strategy) -> Acd {
    acd_with(
        queue(strategy),
        vec![
            agent(1, "q", 1, 3),
            agent(2, "q", 1, 1),
            agent(3, "q", 1, 2),
        ],
    )
}

#[test]
fn ring_all_offers_everyone_and_the_first_answer_cancels_the_rest() {
    let mut acd = three(Strategy::RingAll);
    acd.handle_input(10, Input::Arrive(call(1))).unwrap();
    assert_eq!(offers(&drain(&mut acd)).len(), 3);
    acd.check_invariants(10).unwrap();
    acd.handle_input(
        11,
        Input::OfferAnswered {
            interaction: InteractionId(1),
            agent: AgentId(3),
        },
    )
    .unwrap();
    let out = drain(&mut acd);
    let cancelled: Vec<AgentId> = out
        .iter()
        .filter_map(|o| match o {
            Output::CancelOffer { agent, .. } => Some(*agent),
            _ => None,
        })
        .collect();
    assert_eq!(cancelled, vec![AgentId(2), AgentId(1)]);
    assert_eq!(
        acd.agent_state(AgentId(3), 11),
        Some(AgentState::OnContact(InteractionId(1)))
    );
    assert_eq!(acd.agent_state(AgentId(1), 11), Some(AgentState::Available));
    acd.check_invariants(11).unwrap();
}

#[test]
fn longest_idle_agent_takes_the_agent_free_longest() {
    let mut acd = acd_with(
        queue(Strategy::LongestIdleAgent),
        vec![agent(1, "q", 1, 1), agent(2, "q", 1, 2)],
    );
    acd.handle_input(
        5,
        Input::Break {
            agent: AgentId(1),
            reason: "lunch".into(),
        },
    )
    .unwrap();
    acd.handle_input(6, Input::Available(AgentId(1))).unwrap();
    drain(&mut acd);
    // Agent 2 idle since 0, agent 1 since 6.
    assert_eq!(route_one(&mut acd, 10, 1), AgentId(2));
    assert_eq!(route_one(&mut acd, 20, 2), AgentId(1));
}

#[test]
fn round_robin_continues_after_the_last_agent() {
    let mut acd = three(Strategy::RoundRobin);
    let order: Vec<u32> = (0..4)
        .map(|i| route_one(&mut acd, 10 * i + 10, i + 1).0)
        .collect();
    assert_eq!(order, vec![2, 3, 1, 2]);
}

#[test]
fn top_down_always_starts_at_the_top() {
    let mut acd = three(Strategy::TopDown);
    let order: Vec<u32> = (0..3)
        .map(|i| route_one(&mut acd, 10 * i + 10, i + 1).0)
        .collect();
    assert_eq!(order, vec![2, 2, 2]);
}

#[test]
fn least_talk_time_and_fewest_calls_balance_the_load() {
    for strategy in [
        Strategy::AgentWithLeastTalkTime,
        Strategy::AgentWithFewestCalls,
    ] {
        let mut acd = three(strategy);
        // A long first call for agent 2 (top of the order).
        acd.handle_input(10, Input::Arrive(call(1))).unwrap();
        assert_eq!(
            offers(&drain(&mut acd)),
            vec![(InteractionId(1), AgentId(2))]
        );
        acd.handle_input(
            11,
            Input::OfferAnswered {
                interaction: InteractionId(1),
                agent: AgentId(2),
            },
        )
        .unwrap();
        acd.handle_input(500, Input::ContactEnded(InteractionId(1)))
            .unwrap();
        drain(&mut acd);
        assert_eq!(route_one(&mut acd, 600, 2), AgentId(3), "{strategy:?}");
        assert_eq!(route_one(&mut acd, 700, 3), AgentId(1), "{strategy:?}");
    }
}

#[test]
fn sequentially_by_agent_order_moves_on_after_a_no_answer() {
    let mut acd = three(Strategy::SequentiallyByAgentOrder);
    acd.handle_input(10, Input::Arrive(call(1))).unwrap();
    assert_eq!(
        offers(&drain(&mut acd)),
        vec![(InteractionId(1), AgentId(2))]
    );
    acd.handle_input(
        20,
        Input::OfferNoAnswer {
            interaction: InteractionId(1),
            agent: AgentId(2),
        },
    )
    .unwrap();
    assert_eq!(
        offers(&drain(&mut acd)),
        vec![(InteractionId(1), AgentId(3))]
    );
    acd.handle_input(
        30,
        Input::OfferNoAnswer {
            interaction: InteractionId(1),
            agent: AgentId(3),
        },
    )
    .unwrap();
    assert_eq!(
        offers(&drain(&mut acd)),
        vec![(InteractionId(1), AgentId(1))]
    );
    acd.check_invariants(30).unwrap();
}

#[test]
fn random_is_reproducible_with_a_seed_and_spreads() {
    let run = || {
        let mut acd = three(Strategy::Random);
        (0..30)
            .map(|i| route_one(&mut acd, 10 * i + 10, i + 1).0)
            .collect::<Vec<u32>>()
    };
    let first = run();
    assert_eq!(first, run());
    for id in 1..=3 {
        assert!(first.contains(&id), "agent {id} never picked in {first:?}");
    }
}

#[test]
fn ring_progressively_adds_one_agent_per_step() {
    let mut acd = acd_with(
        QueueConfig {
            ring_progressively_ms: 5_000,
            offer_timeout_ms: 60_000,
            ..queue(Strategy::RingProgressively)
        },
        vec![
            agent(1, "q", 1, 3),
            agent(2, "q", 1, 1),
            agent(3, "q", 1, 2),
        ],
    );
    acd.handle_input(0, Input::Arrive(call(1))).unwrap();
    assert_eq!(
        offers(&drain(&mut acd)),
        vec![(InteractionId(1), AgentId(2))]
    );
    acd.handle_input(4_999, Input::Tick).unwrap();
    assert!(offers(&drain(&mut acd)).is_empty());
    acd.handle_input(5_000, Input::Tick).unwrap();
    assert_eq!(
        offers(&drain(&mut acd)),
        vec![(InteractionId(1), AgentId(3))]
    );
    acd.handle_input(10_000, Input::Tick).unwrap();
    assert_eq!(
        offers(&drain(&mut acd)),
        vec![(InteractionId(1), AgentId(1))]
    );
    acd.check_invariants(10_000).unwrap();
    acd.handle_input(
        10_001,
        Input::OfferAnswered {
            interaction: InteractionId(1),
            agent: AgentId(3),
        },
    )
    .unwrap();
    let cancels = drain(&mut acd)
        .iter()
        .filter(|o| matches!(o, Output::CancelOffer { .. }))
        .count();
    assert_eq!(cancels, 2);
}

fn skilled(id: u32, level: u8, idle_order: u32) -> AgentConfig {
    AgentConfig {
        skills: vec![("zh".into(), level)],
        ..agent(id, "q", 1, idle_order)
    }
}

fn needs_zh(id: u64, level: u8) -> Interaction {
    Interaction {
        skills: vec![SkillRequirement {
            skill: "zh".into(),
            level,
        }],
        ..call(id)
    }
}

#[test]
fn skills_based_prefers_the_best_match_then_the_longest_idle() {
    let mut acd = acd_with(
        queue(Strategy::SkillsBased),
        vec![skilled(1, 60, 1), skilled(2, 90, 2), skilled(3, 90, 3)],
    );
    acd.handle_input(
        1,
        Input::Break {
            agent: AgentId(2),
            reason: "x".into(),
        },
    )
    .unwrap();
    acd.handle_input(2, Input::Available(AgentId(2))).unwrap();
    acd.handle_input(10, Input::Arrive(needs_zh(1, 50)))
        .unwrap();
    // 2 and 3 match best (90); 3 has been idle longer.
    assert_eq!(
        offers(&drain(&mut acd)),
        vec![(InteractionId(1), AgentId(3))]
    );
}

#[test]
fn skill_rules_widen_with_waiting_time() {
    let rules = vec![
        SkillRule {
            after_ms: 30_000,
            max_level: 50,
        },
        SkillRule {
            after_ms: 60_000,
            max_level: 0,
        },
    ];
    let mut acd = acd_with(
        QueueConfig {
            skill_rules: rules,
            ..queue(Strategy::SkillsBased)
        },
        vec![skilled(1, 55, 1), skilled(2, 10, 2)],
    );
    acd.handle_input(
        0,
        Input::Break {
            agent: AgentId(1),
            reason: "x".into(),
        },
    )
    .unwrap();
    acd.handle_input(0, Input::Arrive(needs_zh(1, 80))).unwrap();
    acd.handle_input(0, Input::Arrive(needs_zh(2, 80))).unwrap();
    acd.handle_input(1, Input::Available(AgentId(1))).unwrap();
    assert!(offers(&drain(&mut acd)).is_empty(), "nobody has level 80");
    acd.handle_input(29_999, Input::Tick).unwrap();
    assert!(offers(&drain(&mut acd)).is_empty());
    acd.handle_input(30_000, Input::Tick).unwrap();
    assert_eq!(
        offers(&drain(&mut acd)),
        vec![(InteractionId(1), AgentId(1))],
        "level >= 50 accepted"
    );
    acd.handle_input(59_999, Input::Tick).unwrap();
    assert!(
        offers(&drain(&mut acd))
            .iter()
            .all(|&(_, a)| a != AgentId(2))
    );
    acd.handle_input(60_000, Input::Tick).unwrap();
    assert_eq!(
        offers(&drain(&mut acd)),
        vec![(InteractionId(2), AgentId(2))],
        "any agent with the skill"
    );
    // An agent without the skill is never offered, however long the wait.
    let mut acd = acd_with(
        QueueConfig {
            skill_rules: vec![SkillRule {
                after_ms: 0,
                max_level: 0,
            }],
            ..queue(Strategy::SkillsBased)
        },
        vec![agent(9, "q", 1, 1)],
    );
    acd.handle_input(0, Input::Arrive(needs_zh(1, 80))).unwrap();
    acd.handle_input(1_000_000, Input::Tick).unwrap();
    assert!(offers(&drain(&mut acd)).is_empty());
}

#[test]
fn priority_first_and_ageing_lets_old_callers_overtake() {
    let mut acd = acd_with(queue(Strategy::TopDown), vec![agent(1, "q", 1, 1)]);
    acd.handle_input(
        0,
        Input::Break {
            agent: AgentId(1),
            reason: "x".into(),
        },
    )
    .unwrap();
    acd.handle_input(0, Input::Arrive(call(1))).unwrap();
    acd.handle_input(
        100_000,
        Input::Arrive(Interaction {
            priority: 1,
            ..call(2)
        }),
    )
    .unwrap();
    assert_eq!(
        acd.waiting("q"),
        vec![InteractionId(2), InteractionId(1)],
        "no ageing: priority wins"
    );
    let aged = QueueConfig {
        ageing_ms: Some(60_000),
        ..queue(Strategy::TopDown)
    };
    acd.handle_input(
        100_000,
        Input::Reload(AcdConfig {
            queues: vec![aged],
            agents: vec![agent(1, "q", 1, 1)],
        }),
    )
    .unwrap();
    // Call 1 waited 100 s > one 60 s priority step: it goes first.
    assert_eq!(acd.waiting("q"), vec![InteractionId(1), InteractionId(2)]);
    acd.check_invariants(100_000).unwrap();
}

#[test]
fn tiers_and_penalties_order_agents() {
    let mut low_penalty = agent(3, "q", 1, 9);
    low_penalty.penalty = 0;
    let mut high_penalty = agent(2, "q", 1, 1);
    high_penalty.penalty = 5;
    let mut acd = acd_with(
        queue(Strategy::TopDown),
        vec![agent(1, "q", 2, 0), high_penalty, low_penalty],
    );
    assert_eq!(route_one(&mut acd, 10, 1), AgentId(3));
}

#[test]
fn max_no_answer_sends_the_agent_to_break_and_offer_timeout_expires_offers() {
    let mut a = agent(1, "q", 1, 1);
    a.max_no_answer = 2;
    let mut acd = acd_with(
        QueueConfig {
            offer_timeout_ms: 15_000,
            ..queue(Strategy::TopDown)
        },
        vec![a],
    );
    acd.handle_input(0, Input::Arrive(call(1))).unwrap();
    drain(&mut acd);
    acd.handle_input(
        1_000,
        Input::OfferNoAnswer {
            interaction: InteractionId(1),
            agent: AgentId(1),
        },
    )
    .unwrap();
    // Re-offered to the only agent; this time nobody reports: the tick expires it.
    assert_eq!(
        offers(&drain(&mut acd)),
        vec![(InteractionId(1), AgentId(1))]
    );
    assert_eq!(
        acd.agent_state(AgentId(1), 1_000),
        Some(AgentState::Reserved(InteractionId(1)))
    );
    acd.handle_input(16_000, Input::Tick).unwrap();
    let out = drain(&mut acd);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Log(r) if r.event == QueueEvent::RingNoAnswer))
    );
    assert_eq!(
        acd.agent_state(AgentId(1), 16_000),
        Some(AgentState::Break("max-no-answer".into()))
    );
    assert_eq!(acd.waiting("q"), vec![InteractionId(1)]);
    assert_eq!(acd.agent_stats(AgentId(1), 16_000).unwrap().no_answers, 2);
    acd.check_invariants(16_000).unwrap();
}

#[test]
fn an_agent_who_did_not_answer_rests_before_the_next_offer() {
    let mut a = agent(1, "q", 1, 1);
    a.max_no_answer = 0;
    a.no_answer_delay_ms = 5_000;
    let mut acd = acd_with(queue(Strategy::TopDown), vec![a]);
    acd.handle_input(0, Input::Arrive(call(1))).unwrap();
    assert_eq!(
        offers(&drain(&mut acd)),
        vec![(InteractionId(1), AgentId(1))]
    );
    acd.handle_input(
        100,
        Input::OfferNoAnswer {
            interaction: InteractionId(1),
            agent: AgentId(1),
        },
    )
    .unwrap();
    // An unregistered phone fails at once: no tight loop of offers to the same agent.
    assert!(offers(&drain(&mut acd)).is_empty());
    assert_eq!(
        acd.agent_state(AgentId(1), 100),
        Some(AgentState::Available)
    );
    assert_eq!(acd.next_timeout(), Some(5_100));
    acd.handle_input(5_000, Input::Tick).unwrap();
    assert!(offers(&drain(&mut acd)).is_empty());
    acd.check_invariants(5_000).unwrap();
    acd.handle_input(5_100, Input::Tick).unwrap();
    assert_eq!(
        offers(&drain(&mut acd)),
        vec![(InteractionId(1), AgentId(1))]
    );
    acd.check_invariants(5_100).unwrap();
}

#[test]
fn wrap_up_blocks_offers_until_it_ends() {
    let mut acd = acd_with(
        QueueConfig {
            wrap_up_ms: 10_000,
            ..queue(Strategy::TopDown)
        },
        vec![agent(1, "q", 1, 1)],
    );
    route_one(&mut acd, 0, 1);
    assert_eq!(
        acd.agent_state(AgentId(1), 5),
        Some(AgentState::WrapUp { until: 10_002 })
    );
    acd.handle_input(100, Input::Arrive(call(2))).unwrap();
    assert!(offers(&drain(&mut acd)).is_empty());
    acd.handle_input(10_002, Input::Tick).unwrap();
    assert_eq!(
        offers(&drain(&mut acd)),
        vec![(InteractionId(2), AgentId(1))]
    );
}

#[test]
fn logout_and_break_cancel_ringing_offers_but_not_contacts() {
    let mut acd = acd_with(
        queue(Strategy::TopDown),
        vec![agent(1, "q", 1, 1), agent(2, "q", 1, 2)],
    );
    acd.handle_input(0, Input::Arrive(call(1))).unwrap();
    acd.handle_input(0, Input::Arrive(call(2))).unwrap();
    drain(&mut acd);
    acd.handle_input(
        1,
        Input::OfferAnswered {
            interaction: InteractionId(1),
            agent: AgentId(1),
        },
    )
    .unwrap();
    acd.handle_input(2, Input::Logout(AgentId(1))).unwrap();
    acd.handle_input(
        2,
        Input::Break {
            agent: AgentId(2),
            reason: "coffee".into(),
        },
    )
    .unwrap();
    let out = drain(&mut acd);
    assert!(out.contains(&Output::CancelOffer {
        interaction: InteractionId(2),
        agent: AgentId(2)
    }));
    assert_eq!(
        acd.agent_state(AgentId(1), 2),
        Some(AgentState::OnContact(InteractionId(1)))
    );
    assert_eq!(
        acd.agent_state(AgentId(2), 2),
        Some(AgentState::Break("coffee".into()))
    );
    acd.handle_input(3, Input::ContactEnded(InteractionId(1)))
        .unwrap();
    assert_eq!(acd.agent_state(AgentId(1), 3), Some(AgentState::Offline));
    assert_eq!(acd.waiting("q"), vec![InteractionId(2)]);
    acd.check_invariants(3).unwrap();
}

#[test]
fn overflow_to_queue_extension_and_timeout() {
    let first = QueueConfig {
        max_wait_ms: Some(60_000),
        overflow: Some(OverflowTarget::Queue("b".into())),
        ..QueueConfig::new("q")
    };
    let second = QueueConfig {
        max_length: Some(1),
        overflow: Some(OverflowTarget::Ivr("menu".into())),
        max_wait_ms: Some(10_000),
        ..QueueConfig::new("b")
    };
    let mut acd = Acd::new(
        AcdConfig {
            queues: vec![first, second],
            agents: vec![],
        },
        1,
    )
    .unwrap();
    acd.handle_input(0, Input::Arrive(call(1))).unwrap();
    acd.handle_input(1, Input::Arrive(call(2))).unwrap();
    drain(&mut acd);
    acd.handle_input(60_000, Input::Tick).unwrap();
    let out = drain(&mut acd);
    assert!(out.contains(&Output::Overflow {
        interaction: InteractionId(1),
        target: OverflowTarget::Queue("b".into())
    }));
    assert_eq!(acd.waiting("b"), vec![InteractionId(1)]);
    acd.handle_input(60_001, Input::Tick).unwrap();
    let out = drain(&mut acd);
    // b is full (max length 1): call 2 goes on to b's IVR.
    assert!(out.contains(&Output::Overflow {
        interaction: InteractionId(2),
        target: OverflowTarget::Ivr("menu".into())
    }));
    acd.handle_input(70_000, Input::Tick).unwrap();
    let out = drain(&mut acd);
    assert!(out.contains(&Output::Overflow {
        interaction: InteractionId(1),
        target: OverflowTarget::Ivr("menu".into())
    }));
    assert_eq!(acd.interaction_count(), 0);
    // No target: timeout.
    let mut acd = Acd::new(
        AcdConfig {
            queues: vec![QueueConfig {
                max_wait_ms: Some(5),
                ..QueueConfig::new("q")
            }],
            agents: vec![],
        },
        1,
    )
    .unwrap();
    acd.handle_input(0, Input::Arrive(call(1))).unwrap();
    acd.handle_input(5, Input::Tick).unwrap();
    assert!(drain(&mut acd).contains(&Output::Timeout {
        interaction: InteractionId(1),
        queue: "q".into()
    }));
    assert_eq!(acd.queue_stats("q", 5).unwrap().timed_out, 1);
}

#[test]
fn overflow_loops_end_in_a_timeout() {
    let a = QueueConfig {
        max_length: Some(0),
        overflow: Some(OverflowTarget::Queue("b".into())),
        ..QueueConfig::new("a")
    };
    let b = QueueConfig {
        max_length: Some(0),
        overflow: Some(OverflowTarget::Queue("a".into())),
        ..QueueConfig::new("b")
    };
    let mut acd = Acd::new(
        AcdConfig {
            queues: vec![a, b],
            agents: vec![],
        },
        1,
    )
    .unwrap();
    acd.handle_input(
        0,
        Input::Arrive(Interaction::new(InteractionId(1), Channel::Voice, "a", "x")),
    )
    .unwrap();
    let out = drain(&mut acd);
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o, Output::Timeout { .. }))
            .count(),
        1
    );
    assert_eq!(acd.interaction_count(), 0);
}

#[test]
fn announcements_give_position_and_estimated_wait() {
    let cfg = QueueConfig {
        announce_every_ms: Some(30_000),
        default_handle_ms: 120_000,
        offer_timeout_ms: 60_000,
        ..queue(Strategy::TopDown)
    };
    let mut acd = acd_with(cfg, vec![agent(1, "q", 1, 1), agent(2, "q", 1, 2)]);
    for id in 1..=4 {
        acd.handle_input(0, Input::Arrive(call(id))).unwrap();
    }
    drain(&mut acd);
    acd.handle_input(30_000, Input::Tick).unwrap();
    let announced: Vec<(InteractionId, usize, Option<u64>)> = drain(&mut acd)
        .into_iter()
        .filter_map(|o| match o {
            Output::Announce {
                interaction,
                position,
                estimated_wait_ms,
            } => Some((interaction, position, estimated_wait_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(
        announced,
        vec![
            (InteractionId(3), 1, Some(60_000)),
            (InteractionId(4), 2, Some(120_000))
        ]
    );
}

#[test]
fn statistics_follow_the_standard_definitions() {
    let cfg = QueueConfig {
        wrap_up_ms: 5_000,
        ..queue(Strategy::TopDown)
    };
    let mut acd = acd_with(cfg, vec![agent(1, "q", 1, 1)]);
    acd.handle_input(0, Input::Arrive(call(1))).unwrap();
    acd.handle_input(
        10_000,
        Input::OfferAnswered {
            interaction: InteractionId(1),
            agent: AgentId(1),
        },
    )
    .unwrap();
    acd.handle_input(10_000, Input::Arrive(call(2))).unwrap();
    acd.handle_input(12_000, Input::Abandon(InteractionId(2)))
        .unwrap(); // short abandon
    acd.handle_input(10_000, Input::Arrive(call(3))).unwrap();
    acd.handle_input(40_000, Input::Abandon(InteractionId(3)))
        .unwrap();
    acd.handle_input(70_000, Input::ContactEnded(InteractionId(1)))
        .unwrap();
    let stats = acd.queue_stats("q", 70_000).unwrap();
    assert_eq!(
        (stats.answered, stats.abandoned, stats.short_abandoned),
        (1, 2, 1)
    );
    assert_eq!(
        stats.service_level(),
        Some(0.5),
        "1 within 20 s / (3 offered - 1 short abandon)"
    );
    assert_eq!(stats.average_speed_of_answer_ms(), Some(10_000));
    assert_eq!(stats.average_handle_time_ms(), Some(65_000));
    let agent_stats = acd.agent_stats(AgentId(1), 80_000).unwrap();
    assert_eq!(agent_stats.talk_ms, 60_000);
    // Idle 0-10 s and 75-80 s; handling 10-75 s.
    assert_eq!(
        (agent_stats.handling_ms, agent_stats.idle_ms),
        (65_000, 15_000)
    );
    assert_eq!(agent_stats.occupancy(), Some(65.0 / 80.0));
    drain(&mut acd);
    // Wrap-up ended at 75 s: the next caller rings at once, and waits until answered.
    acd.handle_input(80_000, Input::Arrive(call(4))).unwrap();
    assert_eq!(
        offers(&drain(&mut acd)),
        vec![(InteractionId(4), AgentId(1))]
    );
    let stats = acd.queue_stats("q", 95_000).unwrap();
    assert_eq!((stats.waiting, stats.longest_wait_ms), (1, 15_000));
}

#[test]
fn reload_keeps_agents_and_waiting_callers() {
    let mut acd = acd_with(
        queue(Strategy::TopDown),
        vec![agent(1, "q", 1, 1), agent(2, "q", 1, 2)],
    );
    acd.handle_input(0, Input::Arrive(call(1))).unwrap();
    acd.handle_input(0, Input::Arrive(call(2))).unwrap();
    acd.handle_input(0, Input::Arrive(call(3))).unwrap();
    acd.handle_input(
        1,
        Input::OfferAnswered {
            interaction: InteractionId(1),
            agent: AgentId(1),
        },
    )
    .unwrap();
    drain(&mut acd);
    // The new config drops queue q and agent 2 and adds queue r.
    let r = QueueConfig::new("r");
    acd.handle_input(
        2,
        Input::Reload(AcdConfig {
            queues: vec![r],
            agents: vec![agent(1, "r", 1, 1)],
        }),
    )
    .unwrap();
    assert!(
        drain(&mut acd)
            .iter()
            .all(|o| !matches!(o, Output::CancelOffer { .. } | Output::Timeout { .. }))
    );
    assert_eq!(
        acd.agent_state(AgentId(1), 2),
        Some(AgentState::OnContact(InteractionId(1)))
    );
    assert_eq!(
        acd.agent_state(AgentId(2), 2),
        Some(AgentState::Reserved(InteractionId(2)))
    );
    assert_eq!(acd.waiting("q"), vec![InteractionId(2), InteractionId(3)]);
    assert_eq!(
        acd.handle_input(3, Input::Arrive(call(4))),
        Err(AcdError::QueueDraining("q".into()))
    );
    acd.handle_input(
        3,
        Input::OfferAnswered {
            interaction: InteractionId(2),
            agent: AgentId(2),
        },
    )
    .unwrap();
    acd.handle_input(4, Input::Abandon(InteractionId(3)))
        .unwrap();
    acd.handle_input(5, Input::ContactEnded(InteractionId(1)))
        .unwrap();
    acd.handle_input(6, Input::ContactEnded(InteractionId(2)))
        .unwrap();
    assert!(
        acd.queue_stats("q", 6).is_none(),
        "the drained queue is gone"
    );
    acd.check_invariants(6).unwrap();
}

#[test]
fn chat_capacity_allows_several_contacts_but_voice_one() {
    let a = AgentConfig {
        capacity: [1, 3, 0, 0, 0],
        ..agent(1, "q", 1, 1)
    };
    let mut acd = acd_with(queue(Strategy::TopDown), vec![a]);
    for id in 1..=5 {
        let channel = if id == 5 {
            Channel::Voice
        } else {
            Channel::Chat
        };
        acd.handle_input(
            0,
            Input::Arrive(Interaction::new(InteractionId(id), channel, "q", "c")),
        )
        .unwrap();
    }
    let got = offers(&drain(&mut acd));
    assert_eq!(got.len(), 4, "3 chats + 1 voice: {got:?}");
    assert!(!got.contains(&(InteractionId(4), AgentId(1))));
    acd.check_invariants(0).unwrap();
}

#[test]
fn misuse_is_reported_and_changes_nothing() {
    let mut acd = three(Strategy::TopDown);
    assert_eq!(
        acd.handle_input(0, Input::Login(AgentId(99))),
        Err(AcdError::UnknownAgent(AgentId(99)))
    );
    assert_eq!(
        acd.handle_input(0, Input::Abandon(InteractionId(5))),
        Err(AcdError::UnknownInteraction(InteractionId(5)))
    );
    acd.handle_input(0, Input::Arrive(call(1))).unwrap();
    assert_eq!(
        acd.handle_input(0, Input::Arrive(call(1))),
        Err(AcdError::DuplicateInteraction(InteractionId(1)))
    );
    assert_eq!(
        acd.handle_input(
            0,
            Input::OfferAnswered {
                interaction: InteractionId(1),
                agent: AgentId(1)
            }
        ),
        Err(AcdError::NoSuchOffer {
            interaction: InteractionId(1),
            agent: AgentId(1)
        })
    );
    assert_eq!(
        acd.handle_input(0, Input::ContactEnded(InteractionId(1))),
        Err(AcdError::NotConnected(InteractionId(1)))
    );
    let bad = AcdConfig {
        queues: vec![],
        agents: vec![AgentConfig {
            capacity: [2, 0, 0, 0, 0],
            ..AgentConfig::new(AgentId(1))
        }],
    };
    assert!(matches!(Acd::new(bad, 0), Err(AcdError::InvalidConfig(_))));
    let mut unknown = call(7);
    unknown.queue = "nope".into();
    assert_eq!(
        acd.handle_input(0, Input::Arrive(unknown)),
        Err(AcdError::UnknownQueue("nope".into()))
    );
    acd.check_invariants(0).unwrap();
}

#[test]
fn configuration_reads_from_toml() {
    let text = r#"
        [[queues]]
        name = "sales-zh"
        strategy = "skills-based"
        wrap_up_ms = 10000
        max_wait_ms = 300000
        overflow = { ivr = "main" }
        skill_rules = [{ after_ms = 30000, max_level = 50 }, { after_ms = 60000, max_level = 0 }]

        [[agents]]
        id = 1000
        capacity = [1, 3, 0, 0, 0]
        skills = [["zh", 90], ["billing", 40]]
        tiers = [{ queue = "sales-zh", level = 1, position = 1 }]
    "#;
    let config: AcdConfig = toml::from_str(text).unwrap();
    let queue = &config.queues[0];
    assert_eq!(queue.strategy, Strategy::SkillsBased);
    assert_eq!(queue.overflow, Some(OverflowTarget::Ivr("main".into())));
    assert_eq!(queue.service_level_ms, 20_000, "defaults fill the rest");
    assert_eq!(queue.widened_level(45_000), Some(50));
    assert_eq!(config.agents[0].skills[0], ("zh".to_owned(), 90));
    assert_eq!(config.agents[0].max_no_answer, 3);
    Acd::new(config, 0).unwrap();
}

#[test]
fn next_timeout_names_the_earliest_pending_work() {
    let rules = vec![SkillRule {
        after_ms: 30_000,
        max_level: 0,
    }];
    let cfg = QueueConfig {
        offer_timeout_ms: 15_000,
        max_wait_ms: Some(100_000),
        announce_every_ms: Some(45_000),
        wrap_up_ms: 5_000,
        skill_rules: rules,
        ..queue(Strategy::TopDown)
    };
    let mut acd = acd_with(cfg, vec![agent(1, "q", 1, 1)]);
    assert_eq!(acd.next_timeout(), None);
    acd.handle_input(1_000, Input::Arrive(call(1))).unwrap();
    assert_eq!(acd.next_timeout(), Some(16_000), "the offer expires first");
    acd.handle_input(
        2_000,
        Input::OfferAnswered {
            interaction: InteractionId(1),
            agent: AgentId(1),
        },
    )
    .unwrap();
    assert_eq!(acd.next_timeout(), None, "a contact has no deadline");
    acd.handle_input(3_000, Input::Arrive(needs_zh(2, 90)))
        .unwrap();
    assert_eq!(acd.next_timeout(), Some(33_000), "the skill rule widens");
    acd.handle_input(4_000, Input::ContactEnded(InteractionId(1)))
        .unwrap();
    assert_eq!(acd.next_timeout(), Some(9_000), "the wrap-up ends");
    acd.handle_input(9_000, Input::Tick).unwrap();
    assert_eq!(acd.next_timeout(), Some(33_000));
    acd.handle_input(33_000, Input::Tick).unwrap();
    assert_eq!(
        acd.next_timeout(),
        Some(48_000),
        "the widened rule is in force: the announcement"
    );
}
