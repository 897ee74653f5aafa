// Rendering semantics, feature by feature. Every expected string below is what Jinja2 3.1
// (configured as transformers configures it: ImmutableSandboxedEnvironment, trim_blocks,
// lstrip_blocks, loopcontrols, transformers' tojson) renders for the same template and context.
#include <string>

#include <gtest/gtest.h>

#include "chat/chat_template.h"

namespace tandem::chat {
namespace {

const char* const kContext =
    R"JSON({"s": "  Hello World  ", "n": 7, "f": 2.5, "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}, {"role": "user", "content": "bye"}], "u": "ünï 🤖 çode", "e": [], "nested": {"x": {"y": [10, 20, {"z": "deep"}]}}, "words": ["b", "A", "a", "c", "B"], "nothing": null})JSON";

std::string render(const std::string& source) {
  return ChatTemplate(source).render(nlohmann::ordered_json::parse(kContext));
}

// The render must fail with a TemplateError whose message contains `needle`.
void expect_error(const std::string& source, const std::string& needle) {
  try {
    const std::string out = render(source);
    ADD_FAILURE() << "expected an error containing \"" << needle << "\" from " << source
                  << ", rendered: " << out;
  } catch (const TemplateError& e) {
    EXPECT_NE(e.message().find(needle), std::string::npos)
        << "template: " << source << "\nerror: " << e.what();
    EXPECT_GT(e.line(), 0) << source;
  }
}

TEST(ChatRender, Whitespace) {
  EXPECT_EQ(render(R"TPL(  {% if true %}
    x
  {% endif %}
  y
)TPL"),
            R"TPL(    x
  y)TPL");
  EXPECT_EQ(render(R"TPL(line1
    {%- if true %}
    A
    {%+ if true %}B{% endif %}
{% endif +%}
C)TPL"),
            R"TPL(line1    A
    B
C)TPL");
  EXPECT_EQ(render(R"TPL({% for i in range(3) %}
  {{ i }}
{% endfor %}
)TPL"),
            R"TPL(  0
  1
  2
)TPL");
  EXPECT_EQ(render(R"TPL({{- '  a  ' -}}  
  {{ 'b' }}  {{- 'c' }})TPL"),
            R"TPL(  a  bc)TPL");
  EXPECT_EQ(render(R"TPL(a {# comment #} b {#- trimmed -#} c)TPL"), R"TPL(a  bc)TPL");
  EXPECT_EQ(render(R"TPL(x
  {# own line #}
y)TPL"),
            R"TPL(x
y)TPL");
  EXPECT_EQ(render(R"TPL({% if true -%}

  spaces
{%- endif %})TPL"),
            R"TPL(spaces)TPL");
  EXPECT_EQ(render(R"TPL(	{% if 1 %}tab{% endif %}
  {{ 'v' }}  {% if 1 %}not-lstripped{% endif %})TPL"),
            R"TPL(tab  v  not-lstripped)TPL");
  EXPECT_EQ(render(R"TPL({{ 1 }}
{% if true %}
{{ 2 }}
{% endif %}
{{ 3 }}
)TPL"),
            R"TPL(1
2
3)TPL");
  EXPECT_EQ(render(R"TPL({%- for m in msgs %}
{{ m.role }}: {{ m.content }}
{% endfor -%})TPL"),
            R"TPL(user: hi
assistant: yo
user: bye
)TPL");
  EXPECT_EQ(
      render(R"TPL({% raw %}{{ not parsed }}{% endraw %}|{% raw -%}   x   {%- endraw %}|)TPL"),
      R"TPL({{ not parsed }}|x|)TPL");
  EXPECT_EQ(render(R"TPL(keeps
windows
newlines

)TPL"),
            R"TPL(keeps
windows
newlines
)TPL");
}

TEST(ChatRender, Literals) {
  EXPECT_EQ(
      render(
          R"TPL({{ 1_000 }}|{{ 0x1f }}|{{ 0b101 }}|{{ 0o17 }}|{{ 1.5e3 }}|{{ 2.50 }}|{{ 1e-5 }}|{{ 1e16 }}|{{ 1e15 }})TPL"),
      R"TPL(1000|31|5|15|1500.0|2.5|1e-05|1e+16|1000000000000000.0)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ (1, 2) }}|{{ (1,) }}|{{ () }}|{{ [] }}|{{ {} }}|{{ {'a': [1, {'b': none}]} }}|{{ [true, false, none, True, None] }})TPL"),
      R"TPL((1, 2)|(1,)|()|[]|{}|{'a': [1, {'b': None}]}|[True, False, None, True, None])TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ "it's" }}|{{ 'say "hi"' }}|{{ ["it's", 'a"b'] }}|{{ ['x\ny', 'tab\t'] }})TPL"),
      R"TPL(it's|say "hi"|["it's", 'a"b']|['x\ny', 'tab\t'])TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ '\x41\u00e9\n' }}|{{ 'back\\slash' }}|{{ 'q\'s' }}|{{ 'a\qb' }}|{{ 'a' 'b' "c" }})TPL"),
      R"TPL(Aé
|back\slash|q's|a\qb|abc)TPL");
  EXPECT_EQ(
      render(R"TPL({{ 1, 2 }}|{{ 'x' if true }}|{{ 'x' if false }}|{{ 'y' if 0 else 'n' }})TPL"),
      R"TPL((1, 2)|x||n)TPL");
}

TEST(ChatRender, Arithmetic) {
  EXPECT_EQ(
      render(
          R"TPL({{ n + 1 }}|{{ n - 10 }}|{{ n * 3 }}|{{ n / 2 }}|{{ n // 2 }}|{{ n % 3 }}|{{ n ** 2 }}|{{ -n }}|{{ +n }})TPL"),
      R"TPL(8|-3|21|3.5|3|1|49|-7|7)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ -7 // 2 }}|{{ -7 % 3 }}|{{ 7 % -3 }}|{{ -7.5 // 2 }}|{{ 7.5 % -2 }}|{{ 7.0 // 2 }}|{{ 2 ** -1 }}|{{ 0 ** 0 }})TPL"),
      R"TPL(-4|2|-2|-4.0|-0.5|3.0|0.5|1)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ 1/3 }}|{{ 2**0.5 }}|{{ 0.1 * 3 }}|{{ -0.0 }}|{{ 10**15 * 1.0 }}|{{ 123456789.123456789 }}|{{ 1e308 * 10 }})TPL"),
      R"TPL(0.3333333333333333|1.4142135623730951|0.30000000000000004|-0.0|1000000000000000.0|123456789.12345679|inf)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ -2**2 }}|{{ 2**3**2 }}|{{ (1 + 2) * 3 }}|{{ 2 * 3 + 4 }}|{{ 10 - 2 - 3 }}|{{ 2 ~ (3 + 4) }}|{{ -n|abs }})TPL"),
      R"TPL(4|64|9|10|5|27|7)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ true + 1 }}|{{ 'ab' * 3 }}|{{ 3 * 'x' }}|{{ [1] * 3 }}|{{ 'x' * -1 }}|{{ [1] + [2] }}|{{ (1,) + (2,) }}|{{ 'a' ~ 1 ~ nothing ~ true ~ missing }})TPL"),
      R"TPL(2|ababab|xxx|[1, 1, 1]||[1, 2]|(1, 2)|a1NoneTrue)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ '%s-%d-%05.2f-%x-%r-%%' % ('a', 42, 3.14159, 255, 'q') }}|{{ '%(a)s=%(b)s' % {'a': 1, 'b': 2} }}|{{ '%-5s|%5s' % ('ab', 'cd') }}|{{ '%x' % -255 }}|{{ '%s' % [1] }})TPL"),
      R"TPL(a-42-03.14-ff-'q'-%|1=2|ab   |   cd|-ff|[1])TPL");
}

TEST(ChatRender, Comparisons) {
  EXPECT_EQ(
      render(
          R"TPL({{ 'a' in 'abc' }}|{{ 2 in l }}|{{ 'a' in d }}|{{ 'zz' not in d }}|{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}|{{ 1 == 1 == 1 }})TPL"),
      R"TPL(True|True|True|True|True|False|True)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ 'abc' < 'abd' }}|{{ [1, 2] < [1, 3] }}|{{ 1 == 1.0 }}|{{ true == 1 }}|{{ (1, 2) == [1, 2] }}|{{ {'a': 1, 'b': 2} == {'b': 2, 'a': 1} }}|{{ missing == missing }})TPL"),
      R"TPL(True|True|True|True|False|True|True)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ true and 'A' }}|{{ nothing or 'B' }}|{{ 0 or '' }}|{{ not nothing }}|{{ not 'x' }}|{{ [] or [1] }}|{{ l and l[0] }}|{{ not 1 == 2 }})TPL"),
      R"TPL(A|B||True|False|[1]|3|True)TPL");
}

TEST(ChatRender, AccessAndSlicing) {
  EXPECT_EQ(
      render(
          R"TPL({{ nested.x.y[2].z }}|{{ nested['x']['y'][0] }}|{{ nested.x.missing }}|{{ nested.x.y.0 }}|{{ l[5] }}|{{ l[-1] }})TPL"),
      R"TPL(deep|10||10||2)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ l[1:] }}|{{ l[::-1] }}|{{ l[-10:10:2] }}|{{ l[:1] }}|{{ (1, 2, 3)[1:] }})TPL"),
      R"TPL([1, 2]|[2, 1, 3]|[3, 2]|[3]|(2, 3))TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ u|length }}|{{ u[0] }}|{{ u[1:3] }}|{{ u[-1] }}|{{ u[::-1] }}|{{ 'abc'[::2] }}|{{ 'abc'[5:] }}|{{ 'abc'[10] }})TPL"),
      R"TPL(10|ü|nï|e|edoç 🤖 ïnü|ac||)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ nothing.attr }}|{{ 'abc'.nope }}|{{ l.nope }}|{{ {'items': 1}['items'] }}|{{ d['b'] }}|{{ d.b }})TPL"),
      R"TPL(|||1|2|2)TPL");
}

TEST(ChatRender, StringMethods) {
  EXPECT_EQ(
      render(
          R"TPL({{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s.strip(' Hd') }}|{{ s.split() }}|{{ s.split('o') }}|{{ s.split('o', 1) }}|{{ s.rsplit('o', 1) }})TPL"),
      R"TPL(Hello World|Hello World  |  Hello World|ello Worl|['Hello', 'World']|['  Hell', ' W', 'rld  ']|['  Hell', ' World  ']|['  Hello W', 'rld  '])TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ s.startswith('  H') }}|{{ s.endswith(('x', '  ')) }}|{{ s.replace('l', 'L') }}|{{ s.replace('l', 'L', 2) }}|{{ s.count('l') }}|{{ s.find('World') }}|{{ s.rfind('o') }})TPL"),
      R"TPL(True|True|  HeLLo WorLd  |  HeLLo World  |3|8|9)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ 'a,b'.split(',') }}|{{ ', '.join(['x', 'y']) }}|{{ 'ab'.zfill(5) }}|{{ 'a-b'.partition('-') }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a\nb\r\nc'.splitlines() }}|{{ ''.split(',') }})TPL"),
      R"TPL(['a', 'b']|x, y|000ab|('a', '-', 'b')|['a', 'b c']|['a', 'b', 'c']|[''])TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ 'ab'.center(7, '*') }}|{{ 'ab'.ljust(5, '.') }}|{{ 'ab'.rjust(5) }}|{{ 'hello world'.title() }}|{{ "they're".title() }}|{{ 'ABC def'.capitalize() }}|{{ 'aBc'.swapcase() }})TPL"),
      R"TPL(***ab**|ab...|   ab|Hello World|They'Re|Abc def|AbC)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ 'xxhixx'.strip('x') }}|{{ 'abc'.removeprefix('a') }}|{{ 'abc'.removesuffix('c') }}|{{ '1'.isdigit() }}|{{ 'a1'.isalnum() }}|{{ ' '.isspace() }}|{{ 'Ab'.isupper() }}|{{ ''.isdigit() }})TPL"),
      R"TPL(hi|bc|ab|True|True|True|False|False)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ u.upper() }}|{{ u.split() }}|{{ u.find('🤖') }}|{{ msgs[0].content.upper() }}|{{ [1, 2, 3].index(2) }}|{{ [1, 2, 2].count(2) }})TPL"),
      R"TPL(ÜNÏ 🤖 ÇODE|['ünï', '🤖', 'çode']|4|HI|1|2)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ d.items()|list }}|{{ d.keys()|list }}|{{ d.values()|list }}|{{ d.get('a') }}|{{ d.get('zz', 'def') }}|{{ d.get('zz') }})TPL"),
      R"TPL([('b', 2), ('a', 1)]|['b', 'a']|[2, 1]|1|def|None)TPL");
}

TEST(ChatRender, StringFilters) {
  EXPECT_EQ(
      render(
          R"TPL({{ s }}|{{ s|trim }}|{{ s|upper }}|{{ s|lower }}|{{ s|length }}|{{ s|title }}|{{ s|capitalize }}|{{ nothing|upper }})TPL"),
      R"TPL(  Hello World  |Hello World|  HELLO WORLD  |  hello world  |15|  Hello World  |  hello world  |NONE)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ "they're bill's"|title }}|{{ 'a-b (c) [d] <e>'|title }}|{{ '  x  '|trim('x ') }}|{{ s|replace('World', 'There') }}|{{ 'aaa'|replace('a', 'b', 2) }})TPL"),
      R"TPL(They're Bill's|A-B (C) [D] <E>||  Hello There  |bba)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ 'a\nb'|indent(2) }}|{{ 'a\n\nb'|indent(2, first=true, blank=true) }}|{{ 'a\nb'|indent('--') }}|{{ 'x'|center(4) }})TPL"),
      R"TPL(a
  b|  a
  
  b|a
--b| x  )TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ '<a href="x">&\'</a>'|escape }}|{{ 'x'|safe }}|{{ 123|string }}|{{ nothing|string }}|{{ 'one two  three'|wordcount }})TPL"),
      R"TPL(&lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt;|x|123|None|3)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ 'hello world foo bar'|truncate(12) }}|{{ 'hello world foo bar'|truncate(12, true) }}|{{ 'short'|truncate(3, leeway=5) }}|{{ '%s %s'|format(1, 2) }})TPL"),
      R"TPL(hello...|hello wor...|short|1 2)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ u|upper }}|{{ u|reverse }}|{{ u|center(16) }}|{{ u|first }}|{{ u|last }}|{{ u|list|length }})TPL"),
      R"TPL(ÜNÏ 🤖 ÇODE|edoç 🤖 ïnü|   ünï 🤖 çode   |ü|e|10)TPL");
}

TEST(ChatRender, NumberFilters) {
  EXPECT_EQ(
      render(
          R"TPL({{ 5|round }}|{{ 5.5|round }}|{{ 2.5|round }}|{{ 3.14159|round(2) }}|{{ 3.14159|round(2, 'floor') }}|{{ 3.14159|round(1, 'ceil') }}|{{ 1234|round(-2) }}|{{ 2.675|round(2) }})TPL"),
      R"TPL(5|6.0|2.0|3.14|3.14|3.2|1200|2.67)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ 'abc'|int(base=99) }}|{{ -3.7|abs }}|{{ -3|abs }}|{{ '42'|int }}|{{ '4.2'|int }}|{{ 'x'|int }}|{{ 'x'|int(7) }}|{{ '0x1f'|int(0, 16) }}|{{ ' 1_000 '|int }}|{{ 3.9|int }}|{{ true|int }})TPL"),
      R"TPL(0|3.7|3|42|4|0|7|31|1000|3|1)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ '3.5'|float }}|{{ 'x'|float }}|{{ 3|float }}|{{ '1e3'|float }}|{{ nothing|float(1.5) }}|{{ l|sum }}|{{ msgs|length }}|{{ [1.5, 2]|sum(start=1) }})TPL"),
      R"TPL(3.5|0.0|3.0|1000.0|1.5|6|3|4.5)TPL");
}

TEST(ChatRender, SequenceFilters) {
  EXPECT_EQ(
      render(
          R"TPL({{ l|sort }}|{{ l|sort(reverse=true) }}|{{ l|first }}|{{ l|last }}|{{ l|length }}|{{ l|min }}|{{ l|max }}|{{ l|join('-') }}|{{ l|list }}|{{ l|reverse|list }})TPL"),
      R"TPL([1, 2, 3]|[3, 2, 1]|3|2|3|1|3|3-1-2|[3, 1, 2]|[2, 1, 3])TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ d|dictsort }}|{{ d|dictsort(by='value', reverse=true) }}|{{ d|length }}|{{ d|list }}|{{ d|first }}|{{ d|items|list }})TPL"),
      R"TPL([('a', 1), ('b', 2)]|[('b', 2), ('a', 1)]|2|['b', 'a']|b|[('b', 2), ('a', 1)])TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ msgs|map(attribute='role')|list }}|{{ msgs|selectattr('role', 'equalto', 'user')|list|length }}|{{ msgs|rejectattr('role', 'eq', 'user')|map(attribute='content')|join }})TPL"),
      R"TPL(['user', 'assistant', 'user']|2|yo)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ l|select('odd')|list }}|{{ l|reject('odd')|list }}|{{ msgs|map(attribute='missing', default='D')|list }}|{{ l|map('string')|join(',') }}|{{ [[1, 2], [3]]|map('length')|list }})TPL"),
      R"TPL([3, 1]|[2]|['D', 'D', 'D']|3,1,2|[2, 1])TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ words|unique|list }}|{{ words|unique(case_sensitive=true)|list }}|{{ words|sort }}|{{ words|sort(case_sensitive=true) }}|{{ words|min }}|{{ words|max }})TPL"),
      R"TPL(['b', 'A', 'c']|['b', 'A', 'a', 'c', 'B']|['A', 'a', 'b', 'B', 'c']|['A', 'B', 'a', 'b', 'c']|A|c)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ msgs|sort(attribute='content')|map(attribute='content')|list }}|{{ msgs|join(', ', attribute='role') }}|{{ [1, 2, 3]|select('gt', 1)|list }}|{{ [1, 2, 3]|reject('in', [1, 3])|list }})TPL"),
      R"TPL(['bye', 'hi', 'yo']|user, assistant, user|[2, 3]|[2])TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ [1, 2, 3]|batch(2)|list }}|{{ [1, 2, 3]|batch(2, 0)|list }}|{{ e|first }}|{{ e|last }}|{{ e|length }}|{{ e|join }}|{{ e|sum }}|{{ e|min }})TPL"),
      R"TPL([[1, 2], [3]]|[[1, 2], [3, 0]]|||0||0|)TPL");
  EXPECT_EQ(
      render(
          R"TPL({% if []|select %}generators are true{% endif %}|{{ []|select|list }}|{{ [1]|map('string') is sequence }}|{{ 'Hello'|first }}{{ 'Hello'|last }})TPL"),
      R"TPL(generators are true|[]|False|Ho)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ nested|tojson }}|{{ nested|tojson(indent=2) }}|{{ d|tojson(sort_keys=true) }}|{{ u|tojson }}|{{ u|tojson(ensure_ascii=true) }})TPL"),
      R"TPL({"x": {"y": [10, 20, {"z": "deep"}]}}|{
  "x": {
    "y": [
      10,
      20,
      {
        "z": "deep"
      }
    ]
  }
}|{"a": 1, "b": 2}|"ünï 🤖 çode"|"\u00fcn\u00ef \ud83e\udd16 \u00e7ode")TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ "a\"b\\c\n\t\u0001"|tojson }}|{{ [1.0, 1e20, nothing, true]|tojson }}|{{ l|tojson(separators=(',', ':')) }}|{{ [[]]|tojson(indent=1) }}|{{ {}|tojson(indent=1) }}|{{ [1, [2]]|tojson(indent='>') }})TPL"),
      R"TPL("a\"b\\c\n\t\u0001"|[1.0, 1e+20, null, true]|[3,1,2]|[
 []
]|{}|[
>1,
>[
>>2
>]
])TPL");
}

TEST(ChatRender, Tests) {
  EXPECT_EQ(
      render(
          R"TPL({{ nothing is none }}|{{ true is true }}|{{ true is boolean }}|{{ n is number }}|{{ true is number }}|{{ f is float }}|{{ n is integer }}|{{ true is integer }})TPL"),
      R"TPL(True|True|True|True|True|True|True|False)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ s is string }}|{{ d is mapping }}|{{ l is sequence }}|{{ d is iterable }}|{{ n is iterable }}|{{ zz is defined }}|{{ zz is undefined }}|{{ zz is sequence }}|{{ zz is iterable }})TPL"),
      R"TPL(True|True|True|True|False|False|True|True|True)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ n is odd }}|{{ n is even }}|{{ 9 is divisibleby 3 }}|{{ 9 is divisibleby(4) }}|{{ n is eq 7 }}|{{ n is ne 7 }}|{{ n is lt 8 }}|{{ n is gt 8 }}|{{ n is ge 7 }}|{{ n is le 6 }})TPL"),
      R"TPL(True|False|True|False|True|False|True|False|True|False)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ 2 is in l }}|{{ 'x' is in 'xyz' }}|{{ s is lower }}|{{ 'AB' is upper }}|{{ nothing is sameas none }}|{{ n is not none }}|{{ 'upper' is filter }}|{{ 'odd' is test }}|{{ raise_exception is callable }})TPL"),
      R"TPL(True|True|False|True|True|True|True|True|True)TPL");
}

TEST(ChatRender, Loops) {
  EXPECT_EQ(
      render(
          R"TPL({% for x in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }};{% endfor %})TPL"),
      R"TPL(1032TrueFalse31;2121FalseFalse332;3210FalseTrue31;)TPL");
  EXPECT_EQ(
      render(
          R"TPL({% for x in l if x > 1 %}{{ x }}{{ loop.length }}{% else %}empty{% endfor %}|{% for x in e %}{{ x }}{% else %}empty{% endfor %})TPL"),
      R"TPL(3222|empty)TPL");
  EXPECT_EQ(
      render(
          R"TPL({% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in d|dictsort %}{{ k }}{{ v }}{% endfor %}{% for (a, b) in [[1, 2]] %}{{ a + b }}{% endfor %})TPL"),
      R"TPL(b=2;a=1;a1b23)TPL");
  EXPECT_EQ(
      render(
          R"TPL({% for x in l %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %})TPL"),
      R"TPL(3)TPL");
  EXPECT_EQ(
      render(
          R"TPL({% for x in l %}{% for y in l %}{{ loop.index }}{% endfor %}/{{ loop.index }} {% endfor %})TPL"),
      R"TPL(123/1 123/2 123/3 )TPL");
  EXPECT_EQ(
      render(
          R"TPL({% for x in 'abc' %}{{ x }}{% endfor %}{% for x in d %}{{ x }}{% endfor %}{% for x in zz %}{{ x }}{% endfor %})TPL"),
      R"TPL(abcba)TPL");
  EXPECT_EQ(
      render(
          R"TPL({% for x in [1, 2, 3] %}{{ loop.cycle('a', 'b') }}{% if loop.changed(x > 1) %}C{% endif %}{{ loop.depth }}{% endfor %})TPL"),
      R"TPL(aC1bC1a1)TPL");
  EXPECT_EQ(
      render(R"TPL({% set j = joiner('|') %}{% for x in l %}{{ j() }}{{ x }}{% endfor %})TPL"),
      R"TPL(3|1|2)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ range(5)|list }}|{{ range(2, 10, 3)|list }}|{{ range(5, 0, -2)|list }}|{{ range(0)|list }})TPL"),
      R"TPL([0, 1, 2, 3, 4]|[2, 5, 8]|[5, 3, 1]|[])TPL");
}

TEST(ChatRender, Scoping) {
  EXPECT_EQ(
      render(
          R"TPL({% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}{% for i in l %}{% set x = i %}{% endfor %}{{ x }})TPL"),
      R"TPL(22)TPL");
  EXPECT_EQ(
      render(
          R"TPL({% set x = 0 %}{% for i in range(3) %}{% set x = x + 1 %}{{ x }}{% endfor %}|{{ x }})TPL"),
      R"TPL(111|0)TPL");
  EXPECT_EQ(
      render(
          R"TPL({% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}{% set t2 = (3, 4) %}{% set p, q = t2 %}{{ p * q }})TPL"),
      R"TPL(12(1, 2)12)TPL");
  EXPECT_EQ(
      render(
          R"TPL({% set block %}  inner {{ n }}  {% endset %}[{{ block }}]{% set b2 | trim | upper %}  xx {% endset %}[{{ b2 }}])TPL"),
      R"TPL([  inner 7  ][XX])TPL");
  EXPECT_EQ(
      render(
          R"TPL({% set ns = namespace(a=1, items=[]) %}{% for x in l %}{% set ns.a = ns.a * x %}{% set ns.items = ns.items + [x] %}{% endfor %}{{ ns.a }}{{ ns.items }})TPL"),
      R"TPL(6[3, 1, 2])TPL");
  EXPECT_EQ(
      render(
          R"TPL({% set ns = namespace({'k': 1}, m=2) %}{{ ns.k }}{{ ns.m }}{{ ns.missing }}{{ ns['k'] }}{% set alias = ns %}{% set alias.k = 9 %}{{ ns.k }})TPL"),
      R"TPL(1219)TPL");
  EXPECT_EQ(
      render(
          R"TPL({% with a = 5, b = 6 %}{{ a * b }}{% endwith %}{{ a }}|{% filter upper %}hello {{ n }}{% endfilter %})TPL"),
      R"TPL(30|HELLO 7)TPL");
  EXPECT_EQ(
      render(R"TPL({% set msgs = msgs[1:] %}{{ msgs|length }}{% set l = l|sort %}{{ l }})TPL"),
      R"TPL(2[1, 2, 3])TPL");
  EXPECT_EQ(
      render(
          R"TPL({% set d2 = {'a': 1, 'a': 2, 3: 'int', none: 'n'} %}{{ d2 }}{{ d2[3] }}{{ d2[none] }})TPL"),
      R"TPL({'a': 2, 3: 'int', None: 'n'}intn)TPL");
  EXPECT_EQ(render(R"TPL({{ dict(a=1, b='x') }}|{{ dict({'k': 1}, z=2) }})TPL"),
            R"TPL({'a': 1, 'b': 'x'}|{'k': 1, 'z': 2})TPL");
  EXPECT_EQ(render(R"TPL({% generation %}generated {{ n }}{% endgeneration %})TPL"),
            R"TPL(generated 7)TPL");
}

TEST(ChatRender, Macros) {
  EXPECT_EQ(
      render(
          R"TPL({% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Bob') }} {{ greet('Al', greeting='Hi') }} {{ greet(name='Z') }})TPL"),
      R"TPL(Hello, Bob! Hi, Al! Hello, Z!)TPL");
  EXPECT_EQ(
      render(
          R"TPL({% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k=4) }})TPL"),
      R"TPL(1(2, 3){'k': 4})TPL");
  EXPECT_EQ(
      render(
          R"TPL({% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(6) }})TPL"),
      R"TPL(720)TPL");
  EXPECT_EQ(
      render(
          R"TPL({% macro wrap() %}[{{ caller() }}]{% endmacro %}{% call wrap() %}inside {{ n }}{% endcall %})TPL"),
      R"TPL([inside 7])TPL");
  EXPECT_EQ(
      render(
          R"TPL({% macro wrap2() %}[{{ caller(5) }}]{% endmacro %}{% call(x) wrap2() %}got {{ x }}{% endcall %})TPL"),
      R"TPL([got 5])TPL");
  EXPECT_EQ(
      render(
          R"TPL({% macro m(a, b=a * 2) %}{{ a }},{{ b }},{{ c }}{% endmacro %}{% set c = 'late' %}{{ m(1) }})TPL"),
      R"TPL(1,2,late)TPL");
  EXPECT_EQ(
      render(R"TPL({% macro noargs() %}x{% endmacro %}{{ noargs() ~ noargs() }}{{ noargs }})TPL"),
      R"TPL(xx<Macro 'noargs'>)TPL");
}

TEST(ChatRender, Undefined) {
  EXPECT_EQ(
      render(
          R"TPL([{{ missing }}]|{{ missing|default('dflt') }}|{{ nothing|default('dflt') }}|{{ ''|default('dflt', true) }}|{{ missing|d('x') }}|{{ missing|length }}|{{ missing|list }})TPL"),
      R"TPL([]|dflt|None|dflt|x|0|[])TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ missing is defined and missing }}|{{ 'a' in missing }}|{{ missing|upper }}|{{ missing|trim }}|{{ missing|join }}|{{ missing ~ 'x' }}|{{ missing|first }})TPL"),
      R"TPL(False|False||||x|)TPL");
  EXPECT_EQ(
      render(
          R"TPL({{ ''|first is undefined }}|{{ [nothing]|first is none }}|{{ (missing if false) is undefined }}|{{ l.append }})TPL"),
      R"TPL(True|True|True|)TPL");
}

TEST(ChatRender, RuntimeErrorsRaise) {
  expect_error(R"TPL({{ raise_exception('boom ' ~ n) }})TPL",
               R"TPL(boom 7)TPL");  // jinja2: "TemplateError: boom 7"
  expect_error(R"TPL({{ zz.attr }})TPL",
               R"TPL('zz' is undefined)TPL");  // jinja2: "UndefinedError: 'zz' is undefined"
  expect_error(
      R"TPL({{ nested.x.missing.deeper }})TPL",
      R"TPL('dict object' has no attribute 'missing')TPL");  // jinja2: "UndefinedError: 'dict
                                                             // object' has no attribute 'missing'"
  expect_error(
      R"TPL({{ l.append(4) }})TPL",
      R"TPL(access to attribute 'append' of 'list' object is unsafe.)TPL");  // jinja2:
                                                                             // "SecurityError:
                                                                             // access to attribute
                                                                             // 'append' of 'list'
                                                                             // object is unsafe."
  expect_error(R"TPL({{ d.update({}) }})TPL",
               R"TPL(unsafe)TPL");  // jinja2: "SecurityError: access to attribute 'update' of
                                    // 'dict' object is unsafe."
  expect_error(
      R"TPL({{ 1 + 'a' }})TPL",
      R"TPL(unsupported operand type(s) for +: 'int' and 'str')TPL");  // jinja2: "TypeError:
                                                                       // unsupported operand
                                                                       // type(s) for +: 'int' and
                                                                       // 'str'"
  expect_error(R"TPL({{ 'a' + 1 }})TPL",
               R"TPL(can only concatenate str (not "int") to str)TPL");  // jinja2: "TypeError: can
                                                                         // only concatenate str
                                                                         // (not \"int\") to str"
  expect_error(R"TPL({{ 1 / 0 }})TPL",
               R"TPL(division by zero)TPL");  // jinja2: "ZeroDivisionError: division by zero"
  expect_error(
      R"TPL({{ 5 // 0 }})TPL",
      R"TPL(integer division or modulo by zero)TPL");  // jinja2: "ZeroDivisionError: integer
                                                       // division or modulo by zero"
  expect_error(R"TPL({{ 2 ~ 3 + 4 }})TPL",
               R"TPL(can only concatenate str (not "int") to str)TPL");  // jinja2: "TypeError: can
                                                                         // only concatenate str
                                                                         // (not \"int\") to str"
  expect_error(
      R"TPL({{ l[1:'x'] }})TPL",
      R"TPL(slice indices must be integers or None or have an __index__ method)TPL");  // jinja2:
                                                                                       // "TypeError:
                                                                                       // slice
                                                                                       // indices
                                                                                       // must be
                                                                                       // integers
                                                                                       // or None or
                                                                                       // have an
                                                                                       // __index__
                                                                                       // method"
  expect_error(R"TPL({{ n[1:] }})TPL",
               R"TPL('int' object is not subscriptable)TPL");  // jinja2: "TypeError: 'int' object
                                                               // is not subscriptable"
  expect_error(R"TPL({{ zz[1:] }})TPL",
               R"TPL('zz' is undefined)TPL");  // jinja2: "UndefinedError: 'zz' is undefined"
  expect_error(R"TPL({{ zz + 1 }})TPL",
               R"TPL('zz' is undefined)TPL");  // jinja2: "UndefinedError: 'zz' is undefined"
  expect_error(R"TPL({{ zz() }})TPL",
               R"TPL('zz' is undefined)TPL");  // jinja2: "UndefinedError: 'zz' is undefined"
  expect_error(R"TPL({{ n() }})TPL",
               R"TPL('int' object is not callable)TPL");  // jinja2: "TypeError: 'int' object is not
                                                          // callable"
  expect_error(
      R"TPL({{ [3, 'a']|sort }})TPL",
      R"TPL('<' not supported between instances of 'str' and 'int')TPL");  // jinja2: "TypeError:
                                                                           // '<' not supported
                                                                           // between instances of
                                                                           // 'str' and 'int'"
  expect_error(R"TPL({{ range(200000)|length }})TPL",
               R"TPL(Range too big)TPL");  // jinja2: "OverflowError: Range too big. The sandbox
                                           // blocks ranges larger than MAX_RANGE (100000)."
  expect_error(
      R"TPL({{ zz|tojson }})TPL",
      R"TPL(Object of type Undefined is not JSON serializable)TPL");  // jinja2: "TypeError: Object
                                                                      // of type Undefined is not
                                                                      // JSON serializable"
  expect_error(R"TPL({{ 'x'|list|map('nosuch')|list }})TPL",
               R"TPL(No filter named 'nosuch'.)TPL");  // jinja2: "TemplateRuntimeError: No filter
                                                       // named 'nosuch'."
  expect_error(R"TPL({% if true %}{{ n|nosuch }}{% endif %})TPL",
               R"TPL(No filter named 'nosuch')TPL");  // jinja2: "TemplateRuntimeError: No filter
                                                      // named 'nosuch' found."
  expect_error(R"TPL({{ 'x'|list|select('nosuch')|list }})TPL",
               R"TPL(No test named 'nosuch'.)TPL");  // jinja2: "TemplateRuntimeError: No test named
                                                     // 'nosuch'."
  expect_error(
      R"TPL({{ ([1]|map('string'))|length }})TPL",
      R"TPL(object of type 'generator' has no len())TPL");  // jinja2: "TypeError: object of type
                                                            // 'generator' has no len()"
  expect_error(
      R"TPL({% set x = 1 %}{% set x.y = 2 %})TPL",
      R"TPL(cannot assign attribute on non-namespace object)TPL");  // jinja2:
                                                                    // "TemplateRuntimeError: cannot
                                                                    // assign attribute on
                                                                    // non-namespace object"
  expect_error(
      R"TPL({% for a, b in [[1, 2, 3]] %}{% endfor %})TPL",
      R"TPL(too many values to unpack (expected 2))TPL");  // jinja2: "ValueError: too many values
                                                           // to unpack (expected 2)"
  expect_error(R"TPL({% macro m(a) %}{% endmacro %}{{ m(1, 2) }})TPL",
               R"TPL(macro 'm' takes not more than 1 argument(s))TPL");  // jinja2: "TypeError:
                                                                         // macro 'm' takes not more
                                                                         // than 1 argument(s)"
  expect_error(
      R"TPL({% macro m(a) %}{% endmacro %}{{ m(b=1) }})TPL",
      R"TPL(macro 'm' takes no keyword argument 'b')TPL");  // jinja2: "TypeError: macro 'm' takes
                                                            // no keyword argument 'b'"
  expect_error(
      R"TPL({{ [1, 2][::0] }})TPL",
      R"TPL(slice step cannot be zero)TPL");  // jinja2: "ValueError: slice step cannot be zero"
  expect_error(R"TPL({{ {[1]: 2} }})TPL",
               R"TPL(unhashable type: 'list')TPL");  // jinja2: "TypeError: unhashable type: 'list'"
  expect_error(
      R"TPL({{ 'a' in 1 }})TPL",
      R"TPL(argument of type 'int' is not iterable)TPL");  // jinja2: "TypeError: argument of type
                                                           // 'int' is not iterable"
  expect_error(
      R"TPL({{ 1 in 'a' }})TPL",
      R"TPL('in <string>' requires string as left operand, not int)TPL");  // jinja2: "TypeError:
                                                                           // 'in <string>' requires
                                                                           // string as left
                                                                           // operand, not int"
  expect_error(R"TPL({{ {'a': 1}|items|first|trim|int + none }})TPL",
               R"TPL(unsupported operand)TPL");  // jinja2: "TypeError: unsupported operand type(s)
                                                 // for +: 'int' and 'NoneType'"
}

}  // namespace
}  // namespace tandem::chat
