using System.Globalization;
using Farm.Dockerfile.Expansion;
using Farm.Dockerfile.Graph;
using Farm.Fuzzing;

namespace Farm.Dockerfile.Tests;

/// <summary>
/// A few thousand mutations of the parser corpus through the parser and the build graph (bench/fuzz/run.sh runs
/// millions). Deterministic from the seed; FARM_FUZZ_SEED and FARM_FUZZ_ITERATIONS change the run, and a failing
/// input is saved under FARM_FUZZ_OUT (default /tmp/farm-fuzz) with a note that says what it did.
/// </summary>
public sealed class DockerfileFuzzTests
{
    [Fact]
    public void Mutated_Dockerfiles_parse_and_plan_or_fail_with_a_catalogued_FARM_error_in_time()
    {
        var report = FuzzRunner.Run(new DockerfileFuzzTarget(), FuzzSettings.Options(iterations: 3_000));

        Assert.True(report.Findings.Count == 0, report.ToString());
        Assert.True(report.Outcomes.Count > 3, "the mutations reach only a few outcomes: " + string.Join(", ", report.Outcomes.Keys));
    }

    [Fact]
    public void A_Dockerfile_whose_ARGs_double_on_every_line_is_refused_instead_of_exhausting_the_coordinator()
    {
        var lines = new List<string> { "FROM scratch", "ARG a0=xxxxxxxx" };
        lines.AddRange(Enumerable.Range(1, 40).Select(i => $"ARG a{i}=$a{i - 1}$a{i - 1}"));
        lines.Add("RUN echo $a40");

        var e = Assert.Throws<BuildGraphException>(() => BuildGraph.Create(string.Join('\n', lines)));

        Assert.Equal(BuildGraphErrorCodes.ExpansionFailed, e.Code);
        Assert.IsType<ExpansionTooLongException>(e.InnerException);
        Assert.Contains("more than 1048576 characters", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_word_may_expand_to_a_mebibyte_but_not_beyond()
    {
        var expander = new ShellWordExpander();
        var half = new Dictionary<string, string> { ["a"] = new string('x', ShellWordExpander.MaxExpandedLength / 2), ["b"] = "y" };

        Assert.Equal(ShellWordExpander.MaxExpandedLength, expander.ProcessWord("$a$a", half).Length);
        Assert.Throws<ExpansionTooLongException>(() => expander.ProcessWord("$a$a$b", half));
    }
}

/// <summary>The run the tests make, and the environment variables that change it.</summary>
internal static class FuzzSettings
{
    public static FuzzOptions Options(int iterations) => new()
    {
        Seed = int.TryParse(Environment.GetEnvironmentVariable("FARM_FUZZ_SEED"), CultureInfo.InvariantCulture, out var seed) ? seed : 20261206,
        Iterations = int.TryParse(Environment.GetEnvironmentVariable("FARM_FUZZ_ITERATIONS"), CultureInfo.InvariantCulture, out var n) ? n : iterations,
        Scale = FuzzScale.Small,
        PerInputLimit = TimeSpan.FromSeconds(30),
        OutputDirectory = Environment.GetEnvironmentVariable("FARM_FUZZ_OUT") is { Length: > 0 } dir ? dir : Path.Combine(Path.GetTempPath(), "farm-fuzz"),
    };
}

/// <summary>Findings of the fuzzer in the build graph, as a user meets them.</summary>
public sealed class ExposeAmplificationTests
{
    [Fact]
    public void Repeated_EXPOSE_of_the_whole_port_range_is_refused_instead_of_planning_for_hours()
    {
        var text = "FROM a\n" + string.Concat(Enumerable.Repeat("EXPOSE 1-65535/tcp\n", 10)) + "RUN x\n";

        var e = Assert.Throws<BuildGraphException>(() => BuildGraph.Create(text));

        Assert.Equal(BuildGraphErrorCodes.InvalidPort, e.Code);
        Assert.Equal(6, e.Line);
    }

    [Fact]
    public void Every_port_of_every_protocol_can_still_be_exposed()
    {
        var graph = BuildGraph.Create("FROM a\nEXPOSE 0-65535/tcp 0-65535/udp\nEXPOSE 0-65535/sctp\n");

        Assert.Equal(3 * 65536, graph.Target.Config.ExposedPorts.Count);
    }
}

/// <summary>Findings of the large fuzz run (bench/fuzz/run.sh) in the parser and the expander.</summary>
public sealed class DeepInputTests
{
    [Fact]
    public void Deeply_nested_variable_defaults_fail_with_a_syntax_error_instead_of_killing_the_process()
    {
        const int depth = 200_000;
        var text = "FROM a\nENV a=" + string.Concat(Enumerable.Repeat("${a:-", depth)) + "x" + new string('}', depth) + "\n";

        var e = Assert.Throws<BuildGraphException>(() => BuildGraph.Create(text));

        Assert.Equal(BuildGraphErrorCodes.ExpansionFailed, e.Code);
        Assert.Contains("more than 256 nested", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Nested_variable_defaults_up_to_the_limit_still_expand()
    {
        var word = string.Concat(Enumerable.Repeat("${a:-", ShellWordExpander.MaxNesting - 1)) + "x" + new string('}', ShellWordExpander.MaxNesting - 1);

        Assert.Equal("x", new ShellWordExpander().ProcessWord(word, _ => null));
    }

    [Fact]
    public void A_line_of_a_hundred_thousand_ONBUILDs_is_refused_at_once()
    {
        var text = "FROM a\n" + string.Concat(Enumerable.Repeat("ONBUILD ", 100_000)) + "RUN x\n";

        var e = Assert.Throws<Farm.Dockerfile.Parsing.DockerfileSyntaxException>(() => Farm.Dockerfile.Parsing.DockerfileParser.Parse(text));

        Assert.Equal(Farm.Dockerfile.Parsing.DockerfileErrorCodes.InvalidOnbuild, e.Code);
        Assert.Equal(2, e.Line);
    }
}
