//! The bench itself: with no attack, the quiet tenant is unharmed. If this
//! fails, the bounds are wrong for the machine, not the server.

use crate::support::Hostile;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_tenant_alone_is_unharmed() {
    let mut hostile = Hostile::spawn(&[]).await;
    let quiet = hostile.start_quiet_load();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let report = quiet.stop().await;
    report.assert_unharmed();
    assert!(report.points_written > 0);
    hostile.assert_alive().await;
    hostile.assert_rss_growth_below(512 << 20);
}
