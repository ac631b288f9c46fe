/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the exec relay's record framing (lib/node/exec.c), which both
 * wispd and the node agent run on bytes from the other side: records are
 * read off the input until it runs out; each must lie inside the input,
 * carry no more than the bound, and re-encode to the same head. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "wisp/node.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    for (;;) {
        unsigned ch;
        const unsigned char *p;
        size_t n;
        long whole = wisp_node_exec_record_next(data + off, size - off, &ch, &p, &n);
        if (whole <= 0) {
            if (whole == 0 && size - off >= 5 + WISP_NODE_EXEC_RECORD_MAX)
                abort(); /* a whole record was there and not seen */
            break;
        }
        unsigned char h[5];
        wisp_node_exec_record_head(h, ch, n);
        if ((size_t)whole != 5 + n || n > WISP_NODE_EXEC_RECORD_MAX || ch > 255 ||
            p != data + off + 5 || memcmp(h, data + off, 5) != 0)
            abort();
        off += (size_t)whole;
        if (off > size)
            abort();
    }
    return 0;
}
