/*
 * bridge-base - the baselines of bench/bridge: publish N messages of SIZE
 * bytes to a broker as fast as its client library allows, in batches of
 * BATCH, each batch confirmed before the next (as qbridge out waits for
 * its confirms), with no queue behind it.  Prints the seconds taken.
 *
 *   bridge-base redis PORT STREAM N SIZE BATCH   pipelined XADD (hiredis)
 *   bridge-base nats PORT STREAM N SIZE BATCH    async publish + PubAcks
 *   bridge-base amqp PORT QUEUE N SIZE BATCH     publisher confirms
 *
 * The same client libraries as qbridge, on 127.0.0.1.
 */
#include <err.h>
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

int
main(int argc, char *argv[])
{
	char *body;
	size_t size;
	long n, batch;
	int port;
	double t0;

	if (argc != 7)
		errx(64, "usage: bridge-base redis|nats|amqp PORT NAME N SIZE "
		    "BATCH");
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
	else
		errx(64, "%s: not redis, nats or amqp", argv[1]);
	printf("%.3f\n", now() - t0);
	free(body);
	return 0;
}
