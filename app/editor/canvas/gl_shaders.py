"""GLSL for the image + label layers; the arithmetic mirrors ``app.core.compose`` step by step."""

from __future__ import annotations

DESKTOP_HEADER = "#version 330 core\n"
ES_HEADER = "#version 300 es\nprecision highp float;\nprecision highp int;\nprecision highp usampler2D;\n"

VERTEX = """
uniform vec4 rect;               // tile x0, y0, x1, y1 in image pixels
uniform vec3 row0;               // image -> NDC: the rows of a QTransform (row-vector convention)
uniform vec3 row1;
uniform vec3 row2;
out vec2 img;
void main() {
    vec2 c = vec2((gl_VertexID & 1) != 0 ? rect.z : rect.x, (gl_VertexID & 2) != 0 ? rect.w : rect.y);
    img = c;
    vec3 p = c.x * row0 + c.y * row1 + row2;
    gl_Position = vec4(p.xy / p.z, 0.0, 1.0);
}
"""

FRAGMENT = """
in vec2 img;
out vec4 colour;
uniform sampler2D image;         // R32F grey values or RGBA8 colour, one tile
uniform sampler2D cmap;          // 256 x 1 colour map
uniform usampler2D labels;       // R16UI label tile with a one-pixel apron
uniform sampler2D ctab;          // class colours, 256 per row
uniform vec2 tileOrigin;         // integers passed as floats (exact below 2^24)
uniform vec2 labOrigin;
uniform vec2 imageSize;
uniform int colourImage;
uniform int windowOn;            // 0: uint8 passthrough
uniform float lo;                // float32(centre - width / 2)
uniform float scale;             // float32(255 / width)
uniform int invert;
uniform int labelsOn;
uniform int outline;
uniform int ctabSize;
uniform float opacity;

float display(float x) {
    // apply_window: clip((x - lo) * scale, 0, 255) then uint8 truncation.
    float v = windowOn != 0 ? floor(clamp((x - lo) * scale, 0.0, 255.0)) : x;
    return invert != 0 ? 255.0 - v : v;
}

uint labelAt(ivec2 p) { return texelFetch(labels, p - ivec2(labOrigin), 0).r; }

void main() {
    ivec2 size = ivec2(imageSize);
    ivec2 p = clamp(ivec2(floor(img)), ivec2(0), size - 1);
    vec4 t = texelFetch(image, p - ivec2(tileOrigin), 0);
    vec3 base;
    if (colourImage != 0) {
        vec3 raw = floor(t.rgb * 255.0 + 0.5);
        base = vec3(display(raw.r), display(raw.g), display(raw.b));
    } else {
        int index = int(display(t.r));
        base = floor(texelFetch(cmap, ivec2(index, 0), 0).rgb * 255.0 + 0.5);
    }
    if (labelsOn != 0) {
        uint l = labelAt(p);
        int k = int(min(l, uint(ctabSize - 1)));
        vec4 c = floor(texelFetch(ctab, ivec2(k % 256, k / 256), 0) * 255.0 + 0.5);
        float alpha = 0.0;
        if (c.a > 0.0) {
            if (outline != 0) {
                bool edge = p.x == 0 || p.y == 0 || p.x == size.x - 1 || p.y == size.y - 1;
                edge = edge || labelAt(p + ivec2(1, 0)) != l || labelAt(p - ivec2(1, 0)) != l;
                edge = edge || labelAt(p + ivec2(0, 1)) != l || labelAt(p - ivec2(0, 1)) != l;
                alpha = edge ? 1.0 : 0.0;
            } else {
                alpha = opacity;
            }
        }
        // blend_labels: base + (colour - base) * alpha, rounded half up.
        base = floor(base + (c.rgb - base) * alpha + 0.5);
    }
    colour = vec4(base / 255.0, 1.0);
}
"""


def sources(es: bool) -> tuple[str, str]:
    header = ES_HEADER if es else DESKTOP_HEADER
    return header + VERTEX, header + FRAGMENT
