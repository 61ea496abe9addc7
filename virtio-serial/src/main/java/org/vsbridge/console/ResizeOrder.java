package org.vsbridge.console;

/**
 * Field order of the 4-byte payload after a RESIZE control message. Linux has read {@code rows, cols} since
 * 2010 while the spec text says {@code cols, rows}; a 2025 kernel change to the spec order was reverted for
 * compatibility, and some VMMs (libkrun) switched anyway. The default follows what Linux reads.
 */
public enum ResizeOrder {
    /** {@code le16 rows; le16 cols}: what Linux's virtio_console reads (default). */
    ROWS_COLS,
    /** {@code le16 cols; le16 rows}: the virtio spec's text. */
    COLS_ROWS;

    /** {@code rows-cols} or {@code cols-rows}. */
    public static ResizeOrder parse(final String text) {
        switch (text) {
            case "rows-cols":
                return ROWS_COLS;
            case "cols-rows":
                return COLS_ROWS;
            default:
                throw new IllegalArgumentException("resize order must be 'rows-cols' or 'cols-rows', got '" + text + "'");
        }
    }
}
