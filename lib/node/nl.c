/* SPDX-License-Identifier: Apache-2.0 */
/* The kernel interfaces lib/node builds on: setns into pinned network
 * namespaces, pinning new ones the way `ip netns add` does (so `ip netns`
 * and wisp_http_listen's netns_path see them), and plain rtnetlink requests.
 * Plain sockets rather than libmnl or spawning `ip`: the layout needs six
 * message kinds, and a pod's network must be up within a few milliseconds. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "node/node_int.h"
#include "wisp/log.h"

int node_ns_enter(const char *path)
{
    int saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int e;
    if (saved < 0 || fd < 0)
        goto fail;
    if (setns(fd, CLONE_NEWNET) != 0)
        goto fail;
    close(fd);
    return saved;
fail:
    e = errno;
    if (saved >= 0)
        close(saved);
    if (fd >= 0)
        close(fd);
    errno = e;
    return -1;
}

void node_ns_leave(int saved)
{
    if (setns(saved, CLONE_NEWNET) != 0) {
        wisp_log_err("node", "cannot return to the original network namespace: %s",
                     strerror(errno));
        abort();
    }
    close(saved);
}

/* /run/netns must be a shared mount so that pins made later propagate into
 * mount namespaces copied earlier (and their removal does too): otherwise a
 * pod's mount namespace would keep every other pod's netns alive. */
static int netns_dir_ready(void)
{
    if (mkdir(NODE_NETNS_DIR, 0755) != 0 && errno != EEXIST)
        return -errno;
    if (mount("", NODE_NETNS_DIR, "none", MS_SHARED | MS_REC, NULL) == 0)
        return 0;
    if (errno != EINVAL)
        return -errno;
    if (mount(NODE_NETNS_DIR, NODE_NETNS_DIR, "none", MS_BIND | MS_REC, NULL) != 0)
        return -errno;
    if (mount("", NODE_NETNS_DIR, "none", MS_SHARED | MS_REC, NULL) != 0)
        return -errno;
    return 0;
}

static int valid_ns_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 200 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    return strchr(name, '/') == NULL;
}

int node_netns_exists(const char *name)
{
    char path[256];
    struct stat st;
    if (!valid_ns_name(name))
        return 0;
    snprintf(path, sizeof(path), NODE_NETNS_DIR "/%s", name);
    return stat(path, &st) == 0;
}

int node_netns_create(const char *name)
{
    char path[256];
    int rc = 0, saved = -1, fd, nl = -1;

    if (!valid_ns_name(name))
        return -EINVAL;
    rc = netns_dir_ready();
    if (rc != 0)
        return rc;
    snprintf(path, sizeof(path), NODE_NETNS_DIR "/%s", name);
    fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    close(fd);
    saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (saved < 0) {
        rc = -errno;
        goto out;
    }
    if (unshare(CLONE_NEWNET) != 0) {
        rc = -errno;
        close(saved);
        saved = -1;
        goto out;
    }
    if (mount("/proc/thread-self/ns/net", path, "none", MS_BIND, NULL) != 0) {
        rc = -errno;
        goto out;
    }
    nl = nl_open();
    if (nl < 0) {
        rc = nl;
        goto out;
    }
    rc = nl_link_up(nl, "lo");
out:
    if (nl >= 0)
        close(nl);
    if (saved >= 0)
        node_ns_leave(saved);
    if (rc != 0) {
        umount2(path, MNT_DETACH);
        unlink(path);
    }
    return rc;
}

void node_netns_delete(const char *name)
{
    char path[256];
    if (!valid_ns_name(name))
        return;
    snprintf(path, sizeof(path), NODE_NETNS_DIR "/%s", name);
    if (umount2(path, MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
        wisp_log_warn("node", "umount %s: %s", path, strerror(errno));
    if (unlink(path) != 0 && errno != ENOENT)
        wisp_log_warn("node", "unlink %s: %s", path, strerror(errno));
}

int node_sysctl(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    size_t n = strlen(value);
    int rc = 0;
    if (fd < 0)
        return -errno;
    if (write(fd, value, n) != (ssize_t)n)
        rc = errno ? -errno : -EIO;
    close(fd);
    return rc;
}

/* ---- rtnetlink ------------------------------------------------------------------ */

/* A request buffer; messages are built through a pointer into raw so that
 * the compiler sees the whole buffer as the object written. */
union nlreq {
    struct nlmsghdr h;
    char raw[1024];
};

static void *nl_tail(struct nlmsghdr *h)
{
    return (char *)h + NLMSG_ALIGN(h->nlmsg_len);
}

static void nl_put(struct nlmsghdr *h, unsigned short type, const void *data, size_t len)
{
    struct rtattr *a = nl_tail(h);
    if (NLMSG_ALIGN(h->nlmsg_len) + RTA_SPACE(len) > sizeof(union nlreq))
        abort(); /* the messages are fixed-shape; overflow is a bug */
    a->rta_type = type;
    a->rta_len = (unsigned short)RTA_LENGTH(len);
    if (len)
        memcpy(RTA_DATA(a), data, len);
    h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len);
}

static void nl_put_str(struct nlmsghdr *h, unsigned short type, const char *s)
{
    nl_put(h, type, s, strlen(s) + 1);
}

static void nl_put_u32(struct nlmsghdr *h, unsigned short type, uint32_t v)
{
    nl_put(h, type, &v, sizeof(v));
}

static struct rtattr *nl_nest(struct nlmsghdr *h, unsigned short type)
{
    struct rtattr *a = nl_tail(h);
    nl_put(h, type, NULL, 0);
    return a;
}

static void nl_nest_end(struct nlmsghdr *h, struct rtattr *a)
{
    a->rta_len = (unsigned short)((char *)nl_tail(h) - (char *)a);
}

int nl_open(void)
{
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* Sends one request and waits for its acknowledgement. */
static int nl_talk(int fd, struct nlmsghdr *h)
{
    static unsigned seq;
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    char buf[4096];
    h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    h->nlmsg_seq = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
    if (sendto(fd, h, h->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return -errno;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        for (struct nlmsghdr *r = (struct nlmsghdr *)buf; NLMSG_OK(r, (size_t)n);
             r = NLMSG_NEXT(r, n)) {
            if (r->nlmsg_seq != h->nlmsg_seq)
                continue;
            if (r->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(r);
                return e->error;
            }
        }
    }
}

static int ifindex(const char *ifname)
{
    unsigned i = if_nametoindex(ifname);
    return i ? (int)i : -ENODEV;
}

/* RTM_NEWLINK (flags) or RTM_DELLINK on the link named ifname. */
static int nl_link_msg(int fd, const char *ifname, unsigned short type, unsigned flags)
{
    union nlreq r = {0};
    struct nlmsghdr *h = (struct nlmsghdr *)r.raw;
    struct ifinfomsg *ifi = NLMSG_DATA(h);
    int idx = ifindex(ifname);
    if (idx < 0)
        return idx;
    h->nlmsg_len = NLMSG_LENGTH(sizeof(*ifi));
    h->nlmsg_type = type;
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = idx;
    ifi->ifi_flags = flags;
    ifi->ifi_change = flags;
    return nl_talk(fd, h);
}

int nl_link_up(int fd, const char *ifname)
{
    return nl_link_msg(fd, ifname, RTM_NEWLINK, IFF_UP);
}

int nl_veth_create(int fd, const char *ifname, const char *peer_name, int peer_netns_fd)
{
    union nlreq r = {0};
    struct nlmsghdr *h = (struct nlmsghdr *)r.raw;
    struct ifinfomsg *ifi = NLMSG_DATA(h);
    h->nlmsg_len = NLMSG_LENGTH(sizeof(*ifi));
    h->nlmsg_type = RTM_NEWLINK;
    h->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    ifi->ifi_family = AF_UNSPEC;
    nl_put_str(h, IFLA_IFNAME, ifname);
    struct rtattr *info = nl_nest(h, IFLA_LINKINFO);
    nl_put_str(h, IFLA_INFO_KIND, "veth");
    struct rtattr *data = nl_nest(h, IFLA_INFO_DATA);
    struct rtattr *peer = nl_nest(h, VETH_INFO_PEER);
    struct ifinfomsg pifi = {.ifi_family = AF_UNSPEC};
    /* The peer's ifinfomsg sits in the attribute's payload, before its own
     * attributes. */
    memcpy(nl_tail(h), &pifi, sizeof(pifi));
    h->nlmsg_len += NLMSG_ALIGN(sizeof(pifi));
    nl_put_str(h, IFLA_IFNAME, peer_name);
    nl_put_u32(h, IFLA_NET_NS_FD, (uint32_t)peer_netns_fd);
    nl_nest_end(h, peer);
    nl_nest_end(h, data);
    nl_nest_end(h, info);
    return nl_talk(fd, h);
}

int nl_link_delete(int fd, const char *ifname)
{
    return nl_link_msg(fd, ifname, RTM_DELLINK, 0);
}

int nl_addr_add(int fd, const char *ifname, uint32_t ip, unsigned prefix)
{
    union nlreq r = {0};
    struct nlmsghdr *h = (struct nlmsghdr *)r.raw;
    struct ifaddrmsg *ifa = NLMSG_DATA(h);
    int idx = ifindex(ifname);
    uint32_t be = htonl(ip);
    if (idx < 0)
        return idx;
    h->nlmsg_len = NLMSG_LENGTH(sizeof(*ifa));
    h->nlmsg_type = RTM_NEWADDR;
    h->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = (unsigned char)prefix;
    ifa->ifa_index = (unsigned)idx;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    nl_put(h, IFA_LOCAL, &be, 4);
    nl_put(h, IFA_ADDRESS, &be, 4);
    return nl_talk(fd, h);
}

int nl_route_add(int fd, uint32_t dst, unsigned prefix, uint32_t gw, const char *ifname,
                 int onlink)
{
    union nlreq r = {0};
    struct nlmsghdr *h = (struct nlmsghdr *)r.raw;
    struct rtmsg *rt = NLMSG_DATA(h);
    int idx = ifindex(ifname);
    uint32_t be;
    if (idx < 0)
        return idx;
    h->nlmsg_len = NLMSG_LENGTH(sizeof(*rt));
    h->nlmsg_type = RTM_NEWROUTE;
    h->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
    rt->rtm_family = AF_INET;
    rt->rtm_dst_len = (unsigned char)prefix;
    rt->rtm_table = RT_TABLE_MAIN;
    rt->rtm_protocol = RTPROT_STATIC;
    rt->rtm_scope = gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
    rt->rtm_type = RTN_UNICAST;
    if (gw && onlink)
        rt->rtm_flags = RTNH_F_ONLINK;
    if (prefix) {
        be = htonl(dst);
        nl_put(h, RTA_DST, &be, 4);
    }
    if (gw) {
        be = htonl(gw);
        nl_put(h, RTA_GATEWAY, &be, 4);
    }
    nl_put_u32(h, RTA_OIF, (uint32_t)idx);
    return nl_talk(fd, h);
}
