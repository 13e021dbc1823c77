/*
 * bridge-base - the baselines of bench/bridge: publish N messages of SIZE
 * bytes to a broker as fast as its client library allows, in batches of
 * BATCH, each batch confirmed before the next (as qbridge out waits for
 * its confirms), with no queue behind it; or consume N messages (of SIZE
 * bytes each, checked) in batches of BATCH, each batch acked before the
 * next is taken (as qbridge in acks), with no queue behind it.  Prints
 * the seconds taken.
 *
 *   bridge-base redis PORT STREAM N SIZE BATCH   pipelined XADD (hiredis)
 *   bridge-base nats PORT STREAM N SIZE BATCH    async publish + PubAcks
 *   bridge-base amqp PORT QUEUE N SIZE BATCH     publisher confirms
 *   bridge-base redis-in PORT STREAM N SIZE BATCH
 *		XREADGROUP COUNT BATCH in a new group, one XACK per batch
 *   bridge-base nats-in PORT STREAM N SIZE BATCH
 *		a new durable pull consumer, Fetch BATCH, an ack per
 *		message, one flush per batch
 *   bridge-base amqp-in PORT QUEUE N SIZE BATCH
 *		basic.consume with prefetch BATCH, one basic.ack (multiple)
 *		per batch
 *
 * The same client libraries as qbridge, on 127.0.0.1.
 */
#include <err.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <hiredis/hiredis.h>
#include <nats/nats.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
redis(int port, const char *stream, long n, char *body, size_t size,
    long batch)
{
	redisContext *c = redisConnect("127.0.0.1", port);
	redisReply *r;
	const char *argv[5] = { "XADD", stream, "*", "body", body };
	size_t lens[5] = { 4, strlen(stream), 1, 4, size };
	long i, k, m;

	if (c == NULL || c->err)
		errx(1, "redis: cannot connect");
	for (i = 0; i < n; i += batch) {
		m = n - i < batch ? n - i : batch;
		for (k = 0; k < m; k++)
			redisAppendCommandArgv(c, 5, argv, lens);
		for (k = 0; k < m; k++) {
			if (redisGetReply(c, (void **)&r) != REDIS_OK ||
			    r->type == REDIS_REPLY_ERROR)
				errx(1, "redis: XADD failed");
			freeReplyObject(r);
		}
	}
	redisFree(c);
}

static void
nats(int port, const char *stream, long n, char *body, size_t size,
    long batch)
{
	natsConnection *nc;
	jsCtx *js;
	jsStreamConfig sc;
	jsStreamInfo *si;
	jsErrCode jerr;
	char url[64];
	long i, k, m;

	snprintf(url, sizeof(url), "nats://127.0.0.1:%d", port);
	if (natsConnection_ConnectTo(&nc, url) != NATS_OK ||
	    natsConnection_JetStream(&js, nc, NULL) != NATS_OK)
		errx(1, "nats: cannot connect");
	jsStreamConfig_Init(&sc);
	sc.Name = stream;
	if (js_AddStream(&si, js, &sc, NULL, &jerr) == NATS_OK)
		jsStreamInfo_Destroy(si);
	for (i = 0; i < n; i += batch) {
		m = n - i < batch ? n - i : batch;
		for (k = 0; k < m; k++)
			if (js_PublishAsync(js, stream, body, (int)size,
			    NULL) != NATS_OK)
				errx(1, "nats: publish failed");
		if (js_PublishAsyncComplete(js, NULL) != NATS_OK)
			errx(1, "nats: PubAcks failed");
	}
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
}

static void
amqp(int port, const char *queue, long n, char *body, size_t size,
    long batch)
{
	amqp_connection_state_t c = amqp_new_connection();
	amqp_socket_t *s = amqp_tcp_socket_new(c);
	amqp_basic_properties_t p;
	amqp_frame_t f;
	uint64_t tag = 0, acked = 0;
	long i, k, m;

	if (amqp_socket_open(s, "127.0.0.1", port) != AMQP_STATUS_OK ||
	    amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest",
	    "guest").reply_type != AMQP_RESPONSE_NORMAL)
		errx(1, "amqp: cannot connect");
	amqp_channel_open(c, 1);
	amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0,
	    amqp_empty_table);
	amqp_confirm_select(c, 1);
	if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
		errx(1, "amqp: confirm.select failed");
	memset(&p, 0, sizeof(p));
	p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
	p.delivery_mode = 2;
	for (i = 0; i < n; i += batch) {
		m = n - i < batch ? n - i : batch;
		for (k = 0; k < m; k++, tag++)
			if (amqp_basic_publish(c, 1, amqp_empty_bytes,
			    amqp_cstring_bytes(queue), 1, 0, &p,
			    (amqp_bytes_t){ size, body }) != AMQP_STATUS_OK)
				errx(1, "amqp: publish failed");
		while (acked < tag) {
			if (amqp_simple_wait_frame(c, &f) != AMQP_STATUS_OK)
				errx(1, "amqp: confirms failed");
			if (f.frame_type == AMQP_FRAME_METHOD &&
			    f.payload.method.id == AMQP_BASIC_ACK_METHOD)
				acked = ((amqp_basic_ack_t *)
				    f.payload.method.decoded)->delivery_tag;
		}
	}
	amqp_connection_close(c, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(c);
}

static void
redis_in(int port, const char *stream, long n, size_t size, long batch)
{
	redisContext *c = redisConnect("127.0.0.1", port);
	redisReply *r, *e, *a;
	const char **ids;
	char count[32];
	long got = 0;
	size_t i;

	if (c == NULL || c->err)
		errx(1, "redis: cannot connect");
	if ((ids = calloc((size_t)batch + 3, sizeof(*ids))) == NULL)
		err(1, NULL);
	r = redisCommand(c, "XGROUP CREATE %s bench 0", stream);
	if (r == NULL || r->type == REDIS_REPLY_ERROR)
		errx(1, "redis: XGROUP failed");
	freeReplyObject(r);
	snprintf(count, sizeof(count), "%ld", batch);
	while (got < n) {
		r = redisCommand(c, "XREADGROUP GROUP bench c COUNT %s BLOCK "
		    "10000 STREAMS %s >", count, stream);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY ||
		    r->elements != 1)
			errx(1, "redis: XREADGROUP failed after %ld", got);
		e = r->element[0]->element[1];
		ids[0] = "XACK";
		ids[1] = stream;
		ids[2] = "bench";
		for (i = 0; i < e->elements; i++) {
			a = e->element[i]->element[1];
			if (a->elements < 2 || a->element[1]->len != size)
				errx(1, "redis: not a body of %zu bytes", size);
			ids[i + 3] = e->element[i]->element[0]->str;
		}
		got += (long)e->elements;
		freeReplyObject(redisCommandArgv(c, (int)e->elements + 3, ids,
		    NULL));
		freeReplyObject(r);
	}
	free(ids);
	redisFree(c);
}

static void
nats_in(int port, const char *stream, long n, size_t size, long batch)
{
	natsConnection *nc;
	natsSubscription *sub;
	natsMsgList list;
	jsCtx *js;
	jsSubOptions so;
	jsErrCode jerr;
	char url[64];
	long got = 0;
	int i;

	snprintf(url, sizeof(url), "nats://127.0.0.1:%d", port);
	if (natsConnection_ConnectTo(&nc, url) != NATS_OK ||
	    natsConnection_JetStream(&js, nc, NULL) != NATS_OK)
		errx(1, "nats: cannot connect");
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Config.AckPolicy = js_AckExplicit;
	so.Config.DeliverPolicy = js_DeliverAll;
	if (js_PullSubscribe(&sub, js, stream, "BENCHIN", NULL, &so, &jerr) !=
	    NATS_OK)
		errx(1, "nats: pull subscribe failed");
	while (got < n) {
		if (natsSubscription_Fetch(&list, sub, (int)batch, 10000,
		    &jerr) != NATS_OK)
			errx(1, "nats: fetch failed after %ld", got);
		for (i = 0; i < list.Count; i++) {
			if ((size_t)natsMsg_GetDataLength(list.Msgs[i]) != size)
				errx(1, "nats: not a body of %zu bytes", size);
			if (natsMsg_Ack(list.Msgs[i], NULL) != NATS_OK)
				errx(1, "nats: ack failed");
		}
		got += list.Count;
		natsMsgList_Destroy(&list);
		if (natsConnection_Flush(nc) != NATS_OK)
			errx(1, "nats: flush failed");
	}
	natsSubscription_Destroy(sub);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
}

static void
amqp_in(int port, const char *queue, long n, size_t size, long batch)
{
	amqp_connection_state_t c = amqp_new_connection();
	amqp_socket_t *s = amqp_tcp_socket_new(c);
	amqp_envelope_t e;
	amqp_rpc_reply_t r;
	uint64_t last = 0;
	long got = 0, k = 0;

	if (amqp_socket_open(s, "127.0.0.1", port) != AMQP_STATUS_OK ||
	    amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest",
	    "guest").reply_type != AMQP_RESPONSE_NORMAL)
		errx(1, "amqp: cannot connect");
	amqp_channel_open(c, 1);
	amqp_basic_qos(c, 1, 0, (uint16_t)batch, 0);
	amqp_basic_consume(c, 1, amqp_cstring_bytes(queue), amqp_empty_bytes,
	    0, 0, 0, amqp_empty_table);
	if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
		errx(1, "amqp: basic.consume failed");
	while (got < n) {
		amqp_maybe_release_buffers(c);
		r = amqp_consume_message(c, &e, NULL, 0);
		if (r.reply_type != AMQP_RESPONSE_NORMAL)
			errx(1, "amqp: consume failed after %ld", got);
		if (e.message.body.len != size)
			errx(1, "amqp: not a body of %zu bytes", size);
		last = e.delivery_tag;
		amqp_destroy_envelope(&e);
		got++;
		if (++k == batch || got == n) {
			if (amqp_basic_ack(c, 1, last, 1) != AMQP_STATUS_OK)
				errx(1, "amqp: basic.ack failed");
			k = 0;
		}
	}
	amqp_connection_close(c, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(c);
}

int
main(int argc, char *argv[])
{
	char *body;
	size_t size;
	long n, batch;
	int port;
	double t0;

	if (argc != 7)
		errx(64, "usage: bridge-base redis|nats|amqp[-in] PORT NAME N "
		    "SIZE BATCH");
	port = atoi(argv[2]);
	n = atol(argv[4]);
	size = (size_t)atol(argv[5]);
	batch = atol(argv[6]);
	if ((body = malloc(size)) == NULL)
		err(1, NULL);
	memset(body, 'x', size);
	t0 = now();
	if (strcmp(argv[1], "redis") == 0)
		redis(port, argv[3], n, body, size, batch);
	else if (strcmp(argv[1], "nats") == 0)
		nats(port, argv[3], n, body, size, batch);
	else if (strcmp(argv[1], "amqp") == 0)
		amqp(port, argv[3], n, body, size, batch);
	else if (strcmp(argv[1], "redis-in") == 0)
		redis_in(port, argv[3], n, size, batch);
	else if (strcmp(argv[1], "nats-in") == 0)
		nats_in(port, argv[3], n, size, batch);
	else if (strcmp(argv[1], "amqp-in") == 0)
		amqp_in(port, argv[3], n, size, batch);
	else
		errx(64, "%s: not redis, nats or amqp, or one with -in",
		    argv[1]);
	printf("%.3f\n", now() - t0);
	free(body);
	return 0;
}
