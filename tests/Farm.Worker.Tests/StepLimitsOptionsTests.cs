using Farm.Contracts;
using Farm.Worker.Hosting;
using Microsoft.Extensions.Configuration;

namespace Farm.Worker.Tests;

/// <summary><c>Farm:Worker:StepLimits</c> as an operator writes it: bound, validated at start-up, resolved per step.</summary>
public sealed class StepLimitsOptionsTests
{
    private static WorkerOptions Read(params (string Key, string Value)[] settings) =>
        FarmSettings.Read<WorkerOptions>(
            new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => KeyValuePair.Create<string, string?>("Farm:Worker:StepLimits:" + s.Key, s.Value))).Build(),
            WorkerOptions.Section);

    [Fact]
    public void Settings_bind_with_units_and_become_the_limits_of_a_step_that_asks_for_nothing()
    {
        var limits = Read(("Memory", "256MiB"), ("Pids", "64"), ("Cpus", "1.5"), ("Timeout", "00:10:00")).StepLimits.Resolve(null);

        Assert.Equal(256L << 20, limits.MemoryBytes);
        Assert.Equal(64, limits.Pids);
        Assert.Equal(1.5, limits.Cpus);
        Assert.Equal(TimeSpan.FromMinutes(10), limits.Timeout);
    }

    [Fact]
    public void Out_of_the_box_a_step_is_limited_and_no_default_means_the_cap()
    {
        var defaults = Read().StepLimits.Resolve(null);
        var capOnly = Read(("Memory", "0"), ("MaxMemory", "1g"), ("Pids", "0"), ("Timeout", "00:00:00")).StepLimits.Resolve(null);

        Assert.Equal(4L << 30, defaults.MemoryBytes);
        Assert.Equal(4096, defaults.Pids);
        Assert.Null(defaults.Cpus);
        Assert.Equal(TimeSpan.FromMinutes(45), defaults.Timeout);
        Assert.Equal(1L << 30, capOnly.MemoryBytes);
        Assert.Equal(32768, capOnly.Pids);
        Assert.Equal(TimeSpan.FromMinutes(55), capOnly.Timeout);
    }

    [Theory]
    [InlineData("Memory", "20GiB", "StepLimits:Memory (20 GiB) is above StepLimits:MaxMemory (16 GiB)")]
    [InlineData("Memory", "lots", "StepLimits:Memory: 'lots' is not a size")]
    [InlineData("Memory", "1MiB", "StepLimits:Memory is 1MiB; a step needs at least 16 MiB")]
    [InlineData("Pids", "8", "StepLimits:Pids is 8; it must be at least 16")]
    [InlineData("Timeout", "02:00:00", "StepLimits:Timeout (2 h) is above StepLimits:MaxTimeout (55 min)")]
    public void A_bad_setting_stops_the_worker_at_start_up_naming_it(string key, string value, string expected)
    {
        var e = Assert.Throws<InvalidSettingsException>(() => Read((key, value)));

        Assert.Equal(FarmErrorCodes.InvalidSettings, e.Code);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void A_request_within_the_caps_overrides_the_defaults_and_one_above_is_refused()
    {
        var options = Read(("Memory", "256MiB"), ("MaxMemory", "1GiB"), ("MaxCpus", "2"));

        var granted = options.StepLimits.Resolve(new StepLimitRequest { MemoryBytes = 1L << 30, Cpus = 2 });
        var e = Assert.Throws<StepLimitAboveCapException>(() => options.StepLimits.Resolve(new StepLimitRequest { Cpus = 4 }));

        Assert.Equal(1L << 30, granted.MemoryBytes);
        Assert.Equal(2, granted.Cpus);
        Assert.Equal(FarmErrorCodes.StepLimitAboveCap, e.Code);
        Assert.Contains("4 of CPUs per step, above this farm's cap of 2", e.Message);
        Assert.Contains("Farm:Worker:StepLimits:MaxCpus", e.Message);
    }
}
