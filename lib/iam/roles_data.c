/* SPDX-License-Identifier: Apache-2.0 */
/* data/roles.json built into the library, so roles are data (edited as
 * JSON) while the binary needs no file at run time. */
__asm__(".section .rodata\n"
        ".global wisp__roles_json\n"
        ".global wisp__roles_json_end\n"
        "wisp__roles_json:\n"
        ".incbin \"data/roles.json\"\n"
        "wisp__roles_json_end:\n"
        ".byte 0\n"
        ".previous\n");
