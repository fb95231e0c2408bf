//! The dashboard in a real browser (headless Chromium over WebDriver) against the real
//! `serve`: sign in with the password, see today's real counts on the overview, search
//! the punches, press Retry on a problem group and watch it clear without reloading.
//! Screenshots of each step go to target/screenshots/.

use std::time::Duration;

use fantoccini::Locator;

use crate::api::{PASSWORD, Service};
use crate::support::browser::Browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_see_the_counts_search_and_retry_a_problem_group() {
    let service = Service::start().await;
    service.push_today().await;
    service.frappe_until(|sink| sink["unmapped"] == 2).await;
    let browser = Browser::start().await;
    let client = &browser.client;

    // Not signed in: the page asks for the password; a wrong one is refused.
    client.goto(&format!("{}/", service.web)).await.unwrap();
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/login")
    );
    browser
        .type_into("input[name=password]", "not the password")
        .await;
    browser.click("form button[type=submit]").await;
    let refusal = browser.text("p.error").await;
    assert!(refusal.contains("not right"), "{refusal}");
    browser.type_into("input[name=password]", PASSWORD).await;
    browser.click("form button[type=submit]").await;

    // The overview: real counts.
    assert_eq!(browser.text("#tile-today b").await, "5");
    assert_eq!(browser.text("#tile-up b").await, "1 / 1");
    assert_eq!(
        browser.text("#devices tr[data-device=Gate] td.today").await,
        "5"
    );
    assert!(
        browser
            .text("#sinks tr[data-sink=frappe]")
            .await
            .contains("ok")
    );
    let chart = client.find(Locator::Css("svg.chart")).await.unwrap();
    assert!(chart.html(false).await.unwrap().contains("Gate"));
    browser.screenshot("dashboard-overview").await;
    // On a phone's width the page still fits: nothing wider than the screen.
    client.set_window_size(390, 844).await.unwrap();
    let overflow = client
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        overflow.as_i64().unwrap_or(1) <= 0,
        "wider than a phone by {overflow}"
    );
    browser.screenshot("dashboard-overview-phone").await;
    client.set_window_size(1280, 900).await.unwrap();

    // Search the punches of one PIN.
    browser.click("nav a[href='/punches']").await;
    browser.type_into("#search input[name=pin]", "1004").await;
    browser.click("#search button[type=submit]").await;
    let pins = browser
        .until_text("#punches tbody", Duration::from_secs(10), |text| {
            text.contains("1004")
        })
        .await;
    assert!(!pins.contains("1001"), "only PIN 1004: {pins}");
    let rows = client
        .find_all(Locator::Css("#punches tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(
        browser
            .text("#punches tbody tr")
            .await
            .contains("frappe unmapped")
    );
    let export = client.find(Locator::Css("#export")).await.unwrap();
    assert!(
        export
            .attr("href")
            .await
            .unwrap()
            .unwrap()
            .contains("pin=1004")
    );
    browser.screenshot("dashboard-punches").await;

    // Problems: the unmapped group; the PINs become employees, Retry clears it live.
    browser.click("nav a[href='/problems']").await;
    let group = browser.text("#refusals tbody tr").await;
    assert!(
        group.contains("frappe") && group.contains("unmapped") && group.contains('2'),
        "{group}"
    );
    browser.screenshot("dashboard-problems-before").await;
    service.hire_the_rest();
    browser.click("#refusals button.retry").await;
    let flash = browser
        .until_text("#flash", Duration::from_secs(10), |text| !text.is_empty())
        .await;
    assert!(flash.contains("2 punch(es) opened again"), "{flash}");
    browser
        .until_text("#no-refusals", Duration::from_secs(30), |text| {
            text == "None."
        })
        .await;
    browser.screenshot("dashboard-problems-after").await;
    assert_eq!(service.frappe.checkins().len(), 5);

    // The device's own page.
    client
        .goto(&format!("{}/devices/Gate", service.web))
        .await
        .unwrap();
    assert!(browser.text("#facts").await.contains("SIM1"));
    browser.screenshot("dashboard-device").await;

    browser.close().await;
    service.stop().await;
}
