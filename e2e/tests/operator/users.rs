//! MailUser: SMTP AUTH follows the resource and its Secret; rows changed behind the operator's
//! back are put back.

use super::*;

#[tokio::test]
async fn a_mail_user_and_its_secret_decide_smtp_auth() {
    let stack = Stack::start().await;
    let (submission, certificate) = (stack.submission, &stack.certificate);
    let first = "the first password, long enough";
    stack.apply(&secret(first));
    stack.apply(USER);
    login_becomes(submission, certificate, first, OK).await;
    assert_eq!(stack.ready("mailuser/alice"), "True");
    // The transition is an event `kubectl describe` shows.
    eventually("an event for alice", Duration::from_secs(10), || async {
        let reasons = stack.cluster.kubectl_ok(&[
            "get",
            "events",
            "-n",
            "mail",
            "--field-selector",
            "involvedObject.name=alice",
            "-o",
            "jsonpath={.items[*].reason}",
        ]);
        reasons.contains("Reconciled").then_some(())
    })
    .await;

    // A new password in the Secret replaces the old one.
    let second = "the second password, longer still";
    stack.apply(&secret(second));
    login_becomes(submission, certificate, second, OK).await;
    assert_eq!(login(submission, certificate, first).await, BAD);

    // Settled: nothing reconciles again until something changes (no loop on its own status).
    let before = stack.reconciles("MailUser").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(stack.reconciles("MailUser").await, before);

    // Deleting the MailUser removes the user (the finalizer runs first).
    stack.delete("mailuser", "alice");
    login_becomes(submission, certificate, second, BAD).await;
}

#[tokio::test]
async fn rows_changed_behind_the_operators_back_are_put_back() {
    let stack = Stack::start_with(&[("TERN_OPERATOR_RESYNC_INTERVAL", "2s".into())]).await;
    let password = "a password that drifts away";
    stack.apply(&secret(password));
    stack.apply(USER);
    stack.apply(
        "apiVersion: tern.dev/v1alpha1\nkind: MailDomain\nmetadata: {name: example-org}\n\
         spec: {domain: example.org, kind: Local}\n",
    );
    login_becomes(stack.submission, &stack.certificate, password, OK).await;
    eventually("the domain to be ours", Duration::from_secs(10), || async {
        (rcpt(stack.smtp).await == 250).then_some(())
    })
    .await;

    // Someone deletes the user and the domain in the database itself.
    sqlx::query("DELETE FROM users WHERE login = 'alice@example.org'")
        .execute(&stack.db.pool)
        .await
        .expect("delete the user");
    sqlx::query("DELETE FROM domains WHERE name = 'example.org'")
        .execute(&stack.db.pool)
        .await
        .expect("delete the domain");
    sqlx::query("UPDATE control_revision SET revision = revision + 1")
        .execute(&stack.db.pool)
        .await
        .expect("bump the revision");
    // The next resync puts both back.
    login_becomes(stack.submission, &stack.certificate, password, OK).await;
    eventually("the domain to be back", Duration::from_secs(15), || async {
        (rcpt(stack.smtp).await == 250).then_some(())
    })
    .await;
}
