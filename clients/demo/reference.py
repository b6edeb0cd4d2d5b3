"""Fixed reference data of the demo book: branches, name parts, the instrument universe.

The instrument universe is "the market": it comes from its own fixed seed, so every demo
book (any --seed) trades the same instruments and a re-run finds them by symbol.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BranchSpec:
    code: str
    name: str
    city: str
    district: str
    region_code: str
    weight: float


BRANCHES: tuple[BranchSpec, ...] = (
    BranchSpec("SH01", "Shanghai Lujiazui", "Shanghai", "Lujiazui", "310115", 0.19),
    BranchSpec("BJ01", "Beijing Financial Street", "Beijing", "Financial Street", "110102", 0.16),
    BranchSpec("SZ01", "Shenzhen Futian", "Shenzhen", "Futian", "440304", 0.15),
    BranchSpec("GZ01", "Guangzhou Tianhe", "Guangzhou", "Tianhe", "440106", 0.11),
    BranchSpec("HZ01", "Hangzhou Qianjiang", "Hangzhou", "Qianjiang", "330104", 0.10),
    BranchSpec("NJ01", "Nanjing Xinjiekou", "Nanjing", "Xinjiekou", "320106", 0.08),
    BranchSpec("CD01", "Chengdu Tianfu", "Chengdu", "Tianfu", "510107", 0.08),
    BranchSpec("WH01", "Wuhan Zhongnan", "Wuhan", "Zhongnan", "420106", 0.07),
    BranchSpec("XA01", "Xi'an Gaoxin", "Xi'an", "Gaoxin", "610113", 0.06),
)
CITY_ZH = {
    "Shanghai": "上海市",
    "Beijing": "北京市",
    "Shenzhen": "深圳市",
    "Guangzhou": "广州市",
    "Hangzhou": "杭州市",
    "Nanjing": "南京市",
    "Chengdu": "成都市",
    "Wuhan": "武汉市",
    "Xi'an": "西安市",
}

SURNAMES = np.array(
    list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈")
    + list("姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
    + ["欧阳", "司马", "诸葛", "上官"]
)
# Roughly Zipf: the first surnames (王, 李, 张 ...) are far more common.
SURNAME_WEIGHTS = 1.0 / np.arange(1, len(SURNAMES) + 1) ** 0.9
GIVEN_CHARS = np.array(
    list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚辉鹏宇浩婷雪琳欣怡佳子梓涵轩睿博文晨思雨嘉晓志海春红英玉兰秀")
    + list("桂凤燕丹萍慧颖倩洁蕾璐瑶晶鑫斌飞龙彬俊峰波亮成林森翔宁琪建国华东立新永福振家荣德胜金淑")
)
COMPANY_WORDS = np.array(
    ["华信", "鼎盛", "汇通", "恒泰", "安和", "嘉禾", "明德", "远景", "启航", "盛世", "中和", "银杉"]
)
COMPANY_KINDS = np.array(["投资管理", "资产管理", "私募基金管理", "实业", "科技", "贸易"])
ROADS = np.array(
    ["人民路", "中山路", "解放路", "建设路", "南京路", "长江路", "和平路", "世纪大道", "滨江大道", "新华路"]
)
OCCUPATIONS = np.array(
    [
        "Engineer",
        "Teacher",
        "Civil servant",
        "Business owner",
        "Physician",
        "Accountant",
        "Sales manager",
        "Retired",
        "Self-employed",
        "IT professional",
        "Student",
        "Homemaker",
    ]
)
SOURCES_OF_FUNDS = np.array(
    ["Salary", "Business income", "Investment returns", "Inheritance or gift", "Property sale", "Pension"]
)
OBJECTIVES = np.array(
    ["Capital preservation", "Steady income", "Balanced growth", "Long-term growth", "Speculative gains"]
)

INDUSTRIES = np.array(
    [
        "Banking",
        "Insurance",
        "Securities",
        "Liquor & beverages",
        "Pharmaceuticals",
        "Semiconductors",
        "New energy",
        "Autos",
        "Real estate",
        "Utilities",
        "Consumer electronics",
        "Software",
        "Chemicals",
        "Steel",
        "Coal",
        "Nonferrous metals",
        "Machinery",
        "Food",
        "Retail",
        "Media",
        "Telecom",
        "Defense",
        "Agriculture",
        "Transportation",
        "Construction",
        "Home appliances",
    ]
)
_NAME_HEADS = list("华东中国长江海天金新恒嘉安宏广泰盛瑞达光明远云鼎鑫博凯同兴")
_NAME_TAILS = {
    "Banking": "银行",
    "Insurance": "保险",
    "Securities": "证券",
    "Liquor & beverages": "酒业",
    "Pharmaceuticals": "医药",
    "Semiconductors": "微电子",
    "New energy": "新能源",
    "Autos": "汽车",
    "Real estate": "地产",
    "Utilities": "电力",
    "Consumer electronics": "电子",
    "Software": "软件",
    "Chemicals": "化工",
    "Steel": "钢铁",
    "Coal": "能源",
    "Nonferrous metals": "矿业",
    "Machinery": "重工",
    "Food": "食品",
    "Retail": "商业",
    "Media": "传媒",
    "Telecom": "通信",
    "Defense": "航天",
    "Agriculture": "农业",
    "Transportation": "物流",
    "Construction": "建工",
    "Home appliances": "电器",
}

# Well-known A shares: (symbol, name, industry, price level in CNY).
_BLUE_CHIPS = (
    ("600519.SH", "贵州茅台", "Liquor & beverages", 1550.0),
    ("601318.SH", "中国平安", "Insurance", 48.0),
    ("600036.SH", "招商银行", "Banking", 34.0),
    ("000858.SZ", "五粮液", "Liquor & beverages", 140.0),
    ("300750.SZ", "宁德时代", "New energy", 210.0),
    ("000333.SZ", "美的集团", "Home appliances", 65.0),
    ("601398.SH", "工商银行", "Banking", 5.6),
    ("600900.SH", "长江电力", "Utilities", 27.0),
    ("002594.SZ", "比亚迪", "Autos", 260.0),
    ("688981.SH", "中芯国际", "Semiconductors", 55.0),
    ("601012.SH", "隆基绿能", "New energy", 20.0),
    ("300059.SZ", "东方财富", "Securities", 16.0),
    ("600276.SH", "恒瑞医药", "Pharmaceuticals", 45.0),
    ("000001.SZ", "平安银行", "Banking", 11.0),
    ("601166.SH", "兴业银行", "Banking", 18.0),
    ("600030.SH", "中信证券", "Securities", 22.0),
    ("601888.SH", "中国中免", "Retail", 80.0),
    ("000651.SZ", "格力电器", "Home appliances", 40.0),
    ("601899.SH", "紫金矿业", "Nonferrous metals", 15.0),
    ("600309.SH", "万华化学", "Chemicals", 85.0),
)

UNIVERSE_SEED = 20_240_601


@dataclass(frozen=True)
class Universe:
    """The instruments as parallel arrays; row i is instrument i (id assigned later)."""

    symbol: np.ndarray
    name: np.ndarray
    asset_class: np.ndarray
    market: np.ndarray
    board: np.ndarray
    industry: np.ndarray
    cap_class: np.ndarray
    is_blue_chip: np.ndarray
    is_st: np.ndarray
    risk_level: np.ndarray
    price: np.ndarray  # price level at the start of the history
    tick: np.ndarray  # price increment
    lot: np.ndarray  # quantity step (shares, bonds, or contracts x multiplier)
    daily_vol: np.ndarray  # daily log-return volatility
    popularity: np.ndarray  # relative trading interest within its group

    def __len__(self) -> int:
        return len(self.symbol)


def _stock_name(rng: np.random.Generator, industry: str, taken: set[str]) -> str:
    while True:
        name = "".join(rng.choice(_NAME_HEADS, size=2)) + _NAME_TAILS[industry]
        if name not in taken:
            taken.add(name)
            return name


_ETFS = (
    ("510300.SH", "沪深300ETF", 3), ("510050.SH", "上证50ETF", 3), ("510500.SH", "中证500ETF", 3),
    ("159915.SZ", "创业板ETF", 3), ("588000.SH", "科创50ETF", 3), ("512880.SH", "证券ETF", 3),
    ("512480.SH", "半导体ETF", 3), ("515790.SH", "光伏ETF", 3), ("512170.SH", "医疗ETF", 3),
    ("518880.SH", "黄金ETF", 2), ("159920.SZ", "恒生ETF", 3), ("513100.SH", "纳指ETF", 3),
    ("511010.SH", "国债ETF", 1), ("511260.SH", "十年国债ETF", 1), ("511880.SH", "银华日利", 1),
    ("511990.SH", "华宝添益", 1),
)  # fmt: skip
_REPOS = (
    ("204001.SH", "GC001"), ("204007.SH", "GC007"), ("204014.SH", "GC014"),
    ("131810.SZ", "R-001"), ("131801.SZ", "R-007"), ("131809.SZ", "R-004"),
)  # fmt: skip
# Main contracts: code, name, exchange, price, tick, multiplier (quantity = contracts x multiplier).
_FUTURES = (
    ("IF", "沪深300股指", "CFE", 3800, 0.2, 300), ("IH", "上证50股指", "CFE", 2600, 0.2, 300),
    ("IC", "中证500股指", "CFE", 5600, 0.2, 200), ("IM", "中证1000股指", "CFE", 6000, 0.2, 200),
    ("T", "十年国债", "CFE", 104, 0.005, 10000), ("TF", "五年国债", "CFE", 103, 0.005, 10000),
    ("cu", "沪铜", "SHF", 72000, 10, 5), ("al", "沪铝", "SHF", 19500, 5, 5), ("au", "沪金", "SHF", 480, 0.02, 1000),
    ("ag", "沪银", "SHF", 6000, 1, 15), ("rb", "螺纹钢", "SHF", 3600, 1, 10), ("ru", "橡胶", "SHF", 14000, 5, 10),
    ("sc", "原油", "INE", 560, 0.1, 1000), ("i", "铁矿石", "DCE", 800, 0.5, 100), ("m", "豆粕", "DCE", 3200, 1, 10),
    ("p", "棕榈油", "DCE", 7800, 2, 10), ("jm", "焦煤", "DCE", 1500, 0.5, 60), ("SR", "白糖", "CZC", 6200, 1, 10),
    ("CF", "棉花", "CZC", 15500, 5, 5), ("TA", "PTA", "CZC", 5800, 2, 5), ("MA", "甲醇", "CZC", 2500, 1, 10),
    ("FG", "玻璃", "CZC", 1500, 1, 20), ("SA", "纯碱", "CZC", 2000, 1, 20), ("lc", "碳酸锂", "GFE", 90000, 50, 1),
)  # fmt: skip
# Stock boards: board, code prefixes, exchange suffix, how many, product risk level.
_BOARDS = (
    ("Main board", ("600", "601", "603", "605"), "SH", 110, 3),
    ("Main board", ("000", "001", "002"), "SZ", 60, 3),
    ("ChiNext", ("300", "301"), "SZ", 40, 4),
    ("STAR", ("688",), "SH", 30, 4),
    ("BSE", ("830", "831", "870", "871", "430"), "BJ", 12, 4),
)


def build_universe() -> Universe:
    """The ~420 instruments of the demo market: stocks on every board (blue chips, ST),
    IPO subscriptions, bonds, funds, repos, futures and options."""
    rng = np.random.Generator(np.random.PCG64(UNIVERSE_SEED))
    rows: list[dict] = []
    taken_symbols = {symbol for symbol, *_ in _BLUE_CHIPS} | {s for s, *_ in _ETFS} | {s for s, _ in _REPOS}
    taken_names = {name for _, name, *_ in _BLUE_CHIPS}

    def add(symbol: str, name: str, asset_class: str, board: str, risk: int, price: float, tick: float, lot: int,
            vol: float, pop: float, **extra: object) -> None:  # fmt: skip
        rows.append(dict(symbol=symbol, name=name, asset_class=asset_class, board=board, risk=risk, price=price,
                         tick=tick, lot=lot, vol=vol, pop=pop, **extra))  # fmt: skip

    def new_symbol(prefixes: tuple[str, ...], suffix: str, digits: int = 3) -> str:
        while True:
            symbol = f"{rng.choice(prefixes)}{rng.integers(0, 10**digits):0{digits}d}.{suffix}"
            if symbol not in taken_symbols:
                taken_symbols.add(symbol)
                return symbol

    for symbol, name, industry, price in _BLUE_CHIPS:
        board = {"688": "STAR", "300": "ChiNext"}.get(symbol[:3], "Main board")
        add(symbol, name, "stock", board, 3, price, 0.01, 100, 0.018, 6.0, industry=industry, cap="large", blue=True)

    for board, prefixes, suffix, count, risk in _BOARDS:
        caps = [0.15, 0.35, 0.5] if board == "Main board" else [0.05, 0.35, 0.6]
        for _ in range(count):
            industry = str(rng.choice(INDUSTRIES))
            cap = str(rng.choice(["large", "mid", "small"], p=caps))
            blue = bool(board == "Main board" and cap == "large" and rng.random() < 0.5)
            st = bool(board == "Main board" and cap == "small" and rng.random() < 0.12)
            name = _stock_name(rng, industry, taken_names)
            price = float(np.exp(rng.normal(np.log(14.0), 0.8)))
            if st:
                name = ("*ST" if rng.random() < 0.4 else "ST") + name
                price = float(rng.uniform(1.2, 4.5))
            add(new_symbol(prefixes, suffix), name, "stock", board, 4 if st else risk, price, 0.01, 100,
                0.035 if st else 0.022, float(rng.pareto(1.5) + 0.3), industry=industry, cap=cap, blue=blue,
                st=st)  # fmt: skip

    for i in range(24):  # IPO subscriptions: primary market, bought at the issue price
        board = str(rng.choice(["Main board", "ChiNext", "STAR"], p=[0.5, 0.3, 0.2]))
        industry = str(rng.choice(INDUSTRIES))
        code = {"Main board": f"732{i:03d}.SH", "ChiNext": f"3019{i:02d}.SZ", "STAR": f"787{i:03d}.SH"}[board]
        name = _stock_name(rng, industry, taken_names) + "申购"
        add(code, name, "stock", board, 4 if board == "STAR" else 3, float(rng.uniform(8, 60)), 0.01, 500, 0.0, 1.0,
            industry=industry, cap="small", market="primary")  # fmt: skip

    for i in range(10):
        add(f"0190{i + 10:02d}.SH", f"{20 + i}国债{i + 1:02d}", "bond", "Government bond", 1,
            float(rng.uniform(98, 104)), 0.001, 10, 0.002, 0.4)  # fmt: skip
    for _ in range(10):
        issuer = _stock_name(rng, str(rng.choice(INDUSTRIES)), taken_names)[:2]
        add(new_symbol(("1",), "SH", 5), issuer + "公司债", "bond", "Corporate bond", 2, float(rng.uniform(95, 103)),
            0.001, 10, 0.003, 0.3)  # fmt: skip
    for i in range(14):
        industry = str(rng.choice(INDUSTRIES))
        symbol = new_symbol(("113",), "SH") if i % 2 else new_symbol(("123",), "SZ")
        add(symbol, _stock_name(rng, industry, taken_names)[:2] + "转债", "bond", "Convertible bond", 3,
            float(rng.uniform(100, 160)), 0.001, 10, 0.012, 1.2, industry=industry)  # fmt: skip

    for symbol, name, risk in _ETFS:
        price = 100.0 if risk == 1 else float(rng.uniform(0.8, 5.0))
        add(symbol, name, "fund", "ETF", risk, price, 0.001, 100, 0.0005 if risk == 1 else 0.013, 3.0)
    for i in range(24):
        risk = int(rng.choice([2, 3], p=[0.4, 0.6]))
        symbol = new_symbol(("16",), "SZ", 4) if i % 2 else new_symbol(("50",), "SH", 4)
        name = str(rng.choice(COMPANY_WORDS)) + ("稳健债券LOF" if risk == 2 else "成长混合LOF")
        add(symbol, name, "fund", "LOF", risk, float(rng.uniform(0.9, 3.0)), 0.001, 100,
            0.004 if risk == 2 else 0.012, 0.5)  # fmt: skip

    for symbol, name in _REPOS:
        add(symbol, name, "repo", "Repo", 1, 100.0, 0.001, 1000, 0.0, 1.5)

    for code, name, exchange, price, tick, multiplier in _FUTURES:
        popular = code in {"IF", "IC", "rb", "au"}
        add(f"{code}.{exchange}", f"{name}主力", "futures", f"Futures {exchange}", 4, float(price), tick, multiplier,
            0.014, 2.0 if popular else 1.0)  # fmt: skip

    for i in range(16):
        strike = 2.2 + 0.1 * (i % 8)
        add(f"1000{7000 + i:04d}.SH", f"50ETF{'购' if i < 8 else '沽'}{strike:.1f}", "option", "ETF option", 5,
            float(rng.uniform(0.02, 0.4)), 0.0001, 10000, 0.06, 1.0)  # fmt: skip
    for i in range(6):
        add(f"IO{i:02d}{'CP'[i % 2]}.CFE", f"沪深300{'购沽'[i % 2]}{3600 + 100 * i}", "option", "Index option", 5,
            float(rng.uniform(20, 160)), 0.2, 100, 0.05, 0.8)  # fmt: skip

    def col(key: str, dtype: object = None, default: object = "") -> np.ndarray:
        return np.array([row.get(key, default) for row in rows], dtype=dtype)

    return Universe(
        symbol=col("symbol"),
        name=col("name"),
        asset_class=col("asset_class"),
        market=col("market", default="secondary"),
        board=col("board"),
        industry=col("industry"),
        cap_class=col("cap"),
        is_blue_chip=col("blue", bool, False),
        is_st=col("st", bool, False),
        risk_level=col("risk", np.int16),
        price=col("price", float),
        tick=col("tick", float),
        lot=col("lot", np.int64),
        daily_vol=col("vol", float),
        popularity=col("pop", float),
    )
