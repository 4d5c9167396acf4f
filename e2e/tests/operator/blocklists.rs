//! MailBlocklist: its entries refuse clients until it is deleted.

use super::*;

#[tokio::test]
async fn a_mail_blocklist_refuses_its_clients_until_it_is_deleted() {
    let stack = Stack::start().await;
    let greeting = || async {
        let addr = format!("127.0.0.1:{}", stack.smtp).parse().expect("addr");
        SmtpClient::connect(addr).await.1.code
    };
    assert_eq!(greeting().await, 220);

    stack.apply(
        "apiVersion: tern.dev/v1alpha1\nkind: MailBlocklist\nmetadata: {name: local}\n\
         spec: {entries: [{type: Cidr, value: 127.0.0.0/8, reason: test}, \
                          {type: SenderDomain, value: spam.example}]}\n",
    );
    eventually(
        "the client to be refused",
        Duration::from_secs(10),
        || async { (greeting().await == 554).then_some(()) },
    )
    .await;
    assert_eq!(stack.ready("mailblocklist/local"), "True");
    let entries = stack.cluster.kubectl_ok(&[
        "get",
        "mailblocklist",
        "local",
        "-n",
        "mail",
        "-o",
        "jsonpath={.status.entries}",
    ]);
    assert_eq!(entries, "2");

    stack.delete("mailblocklist", "local");
    eventually(
        "the client to be let in again",
        Duration::from_secs(10),
        || async { (greeting().await == 220).then_some(()) },
    )
    .await;
}
