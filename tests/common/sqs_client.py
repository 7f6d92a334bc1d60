"""The tests' SQS client: the real AWS SDK for Python (boto3, installed by scripts/moto.sh), independent of
plutos's own. Commands (credentials and region from the environment):

  create ENDPOINT NAME [fifo]      creates a queue, prints its URL
  user ENDPOINT NAME               creates an IAM user allowed every SQS action, prints its access key id and
                                   secret (for a server that checks signatures)
  receive ENDPOINT QUEUE_URL       receives every message without deleting it (each hidden for 10 minutes),
                                   one JSON line each: body, message attributes, group and deduplication ids;
                                   from a FIFO queue each batch is deleted once received (a group's next
                                   messages are served only then)
  notifications ENDPOINT QUEUE_URL the same messages read as S3 event notifications: one JSON line each with
                                   Records[0].s3's bucket, key (decoded) and size, and Records[0].plutos
"""

import json
import sys
from urllib.parse import unquote_plus

import boto3


def receive(sqs, url):
    empty = 0
    while empty < 3:
        answer = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=600,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
        messages = answer.get("Messages", [])
        empty = 0 if messages else empty + 1
        yield from messages
        if url.endswith(".fifo") and messages:
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )


def main():
    command, endpoint = sys.argv[1], sys.argv[2]
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    if command == "create":
        name = sys.argv[3]
        attributes = {}
        if len(sys.argv) > 4 and sys.argv[4] == "fifo":
            attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "false"}
        print(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
    elif command == "user":
        iam = boto3.client("iam", endpoint_url=endpoint)
        name = sys.argv[3]
        iam.create_user(UserName=name)
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}
        iam.put_user_policy(UserName=name, PolicyName="sqs", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        print(key["AccessKeyId"], key["SecretAccessKey"])
    elif command == "receive":
        for m in receive(sqs, sys.argv[3]):
            attributes = {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()}
            system = m.get("Attributes", {})
            print(json.dumps({
                "body": m["Body"],
                "attributes": attributes,
                "group": system.get("MessageGroupId"),
                "dedup": system.get("MessageDeduplicationId"),
            }))
    elif command == "notifications":
        for m in receive(sqs, sys.argv[3]):
            record = json.loads(m["Body"])["Records"][0]
            s3 = record["s3"]
            print(json.dumps({
                "event": record["eventName"],
                "source": record["eventSource"],
                "bucket": s3["bucket"]["name"],
                "key": unquote_plus(s3["object"]["key"]),
                "size": s3["object"]["size"],
                "plutos": record["plutos"],
            }))
    else:
        sys.exit(f"unknown command {command}")


main()
