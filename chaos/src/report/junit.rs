//! junit.xml: one test case per check and expectation, so CI shows a run's results natively. A failed check is a
//! `<failure>`, an unknown or a tool error an `<error>`, one that was not evaluated `<skipped>`. Test case names are
//! the checks' stable ids (`linearizability`, `expect.leader_within`), so CI can follow them from run to run.
//! A failure that is a violation has the violation's label as its type (`not-linearizable`, `node-crashed`...);
//! the suite's properties list the run's `violations`, `first_violation_s` and `stopped_early`.

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use super::schema::Report;
use super::verdict::{CheckVerdict, ViolationKind};

fn count(report: &Report, v: CheckVerdict) -> usize {
    report.checks.iter().filter(|c| c.verdict == v).count()
}

/// Renders junit.xml.
pub fn render(report: &Report) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    write(&mut w, report).expect("writing XML into memory cannot fail");
    let mut s = String::from_utf8(w.into_inner()).expect("quick-xml writes UTF-8");
    s.push('\n');
    s
}

fn write(w: &mut Writer<Vec<u8>>, report: &Report) -> std::io::Result<()> {
    let tests = report.checks.len().to_string();
    let failures = count(report, CheckVerdict::Fail).to_string();
    let errors =
        (count(report, CheckVerdict::Unknown) + count(report, CheckVerdict::ToolError)).to_string();
    let skipped = count(report, CheckVerdict::NotEvaluated).to_string();
    let time = format!("{:.3}", report.history_seconds);
    let suite = format!("chaos.{}", report.run.plan);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("testsuites")
        .with_attribute(("name", "chaos"))
        .with_attribute(("tests", tests.as_str()))
        .with_attribute(("failures", failures.as_str()))
        .with_attribute(("errors", errors.as_str()))
        .with_attribute(("skipped", skipped.as_str()))
        .with_attribute(("time", time.as_str()))
        .write_inner_content(|w| {
            let mut suite_el = w
                .create_element("testsuite")
                .with_attribute(("name", suite.as_str()))
                .with_attribute(("tests", tests.as_str()))
                .with_attribute(("failures", failures.as_str()))
                .with_attribute(("errors", errors.as_str()))
                .with_attribute(("skipped", skipped.as_str()))
                .with_attribute(("time", time.as_str()));
            if let Some(t) = &report.run.started_at {
                suite_el = suite_el.with_attribute(("timestamp", t.as_str()));
            }
            suite_el.write_inner_content(|w| {
                w.create_element("properties").write_inner_content(|w| {
                    let mut props: Vec<(&str, String)> =
                        vec![("verdict", report.verdict.word().to_owned())];
                    let slugs: Vec<&str> = report.violations.iter().map(|v| v.slug()).collect();
                    props.push(("violations", slugs.join(",")));
                    if let Some(t) = report.first_violation_s {
                        props.push(("first_violation_s", format!("{t:.3}")));
                    }
                    if let Some(e) = &report.stopped_early {
                        props.push(("stopped_early", format!("{}: {}", e.label, e.reason)));
                    }
                    if let Some(s) = report.run.seed {
                        props.push(("seed", s.to_string()));
                    }
                    if let Some(c) = &report.run.git_commit {
                        props.push(("git_commit", c.clone()));
                    }
                    if let Some(t) = &report.run.target {
                        props.push(("target", t.clone()));
                    }
                    if let Some(r) = &report.run.replay {
                        props.push(("replay", r.clone()));
                    }
                    for (name, value) in &props {
                        w.create_element("property")
                            .with_attribute(("name", *name))
                            .with_attribute(("value", value.as_str()))
                            .write_empty()?;
                    }
                    Ok(())
                })?;
                for c in &report.checks {
                    w.create_element("testcase")
                        .with_attribute(("classname", suite.as_str()))
                        .with_attribute(("name", c.id.as_str()))
                        .with_attribute(("time", "0"))
                        .write_inner_content(|w| {
                            let message = format!("{}: {}", c.name, c.message);
                            match c.verdict {
                                CheckVerdict::Pass => {}
                                CheckVerdict::Fail => {
                                    // A violation's failure is typed with its label (`not-linearizable`...).
                                    let kind = ViolationKind::ALL
                                        .into_iter()
                                        .find(|v| v.check_id() == c.id)
                                        .map_or("fail", ViolationKind::slug);
                                    w.create_element("failure")
                                        .with_attribute(("message", message.as_str()))
                                        .with_attribute(("type", kind))
                                        .write_text_content(BytesText::new(&message))?;
                                }
                                CheckVerdict::Unknown | CheckVerdict::ToolError => {
                                    let kind = if c.verdict == CheckVerdict::Unknown {
                                        "unknown"
                                    } else {
                                        "tool-error"
                                    };
                                    w.create_element("error")
                                        .with_attribute(("message", message.as_str()))
                                        .with_attribute(("type", kind))
                                        .write_text_content(BytesText::new(&message))?;
                                }
                                CheckVerdict::NotEvaluated => {
                                    w.create_element("skipped")
                                        .with_attribute(("message", message.as_str()))
                                        .write_empty()?;
                                }
                            }
                            w.create_element("system-out")
                                .write_text_content(BytesText::new(&message))?;
                            Ok(())
                        })?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
    Ok(())
}
